// Package packaging holds the files the .deb ships (systemd unit, tmpfiles,
// example configuration) and the scripts that build it; it has no code of
// its own. Its tests check that the shipped example configuration is one
// the daemon accepts and documents every key with its true default.
package packaging
