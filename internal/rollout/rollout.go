// Package rollout decides whether one appliance takes a phased release:
// a pure function of the machine-id, the extension and the release tag,
// stable for each appliance across checks, reboots and versions of
// sysextd (docs/fleet.md).
package rollout

import (
	"crypto/sha256"
	"encoding/binary"
)

// Bucket is the appliance's place, 0–99, in the rollout of one release of
// one extension: the first 8 bytes of SHA-256("machine-id\x00extension\x00tag")
// as a big-endian integer, mod 100. The NUL separators keep
// ("ab","c") and ("a","bc") apart. The tag is part of the input so that
// the same appliances are not always the first to take every release.
func Bucket(machineID, extension, tag string) int {
	h := sha256.New()
	h.Write([]byte(machineID))
	h.Write([]byte{0})
	h.Write([]byte(extension))
	h.Write([]byte{0})
	h.Write([]byte(tag))
	sum := h.Sum(nil)
	return int(binary.BigEndian.Uint64(sum[:8]) % 100)
}

// Eligible reports whether the appliance machineID takes release tag of
// extension when it is phased to pct percent: Bucket < pct. pct ≤ 0 takes
// it nowhere, pct ≥ 100 everywhere. Raising pct only adds appliances: one
// that was eligible at 5 % stays eligible at 25 %.
func Eligible(machineID, extension, tag string, pct int) bool {
	if pct >= 100 {
		return true
	}
	return Bucket(machineID, extension, tag) < pct
}
