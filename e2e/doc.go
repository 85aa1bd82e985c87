//go:build e2e

// Package e2e is the appliance end-to-end tier (SPEC §13 tier 3): it boots a
// real Debian trixie root under systemd-nspawn, with systemd as PID 1, and
// drives it through nsenter. It provides the harness (a cached debootstrap
// base, booted containers, extensions built from real Debian packages or by
// hand) and the tests that use it.
//
// Everything here needs root and runs only with the build tag:
//
//	go test -tags e2e ./e2e/ -v
//
// See README.md in this directory and docs/e2e.md for what the harness
// learned about systemd on this machine.
package e2e
