// Package reliability holds the root-tier proofs of SPEC §15's first
// promise: killed at any moment, run concurrently, or blocked by an
// unprivileged user, sysextctl and sysextd never leave an appliance with
// fewer working extensions than before. The package has no code of its
// own: its tests drive the real binaries (built with -tags failpoints)
// against real systemd-sysext in a private mount namespace. The figures
// they print are in docs/RELIABILITY.md.
package reliability
