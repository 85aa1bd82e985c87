// Package buildinfo holds what the build stamps into the binaries. It
// imports nothing, so that every main (sysextd, sysextctl, the docs
// generator) can read the version without linking another's code.
package buildinfo

// Version is set at build time with
// -ldflags "-X github.com/spamtagger/sysextd/internal/buildinfo.Version=...".
var Version = "dev"
