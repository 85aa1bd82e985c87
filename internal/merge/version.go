package merge

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// ErrNoSystemd is returned by SystemdVersion when no systemd is found under
// the root.
var ErrNoSystemd = errors.New("no systemd found")

// Versions of systemd where systemd-sysext's behaviour changes in a way
// sysextd must follow (docs/systemd-sysext.md has the table).
const (
	// VersionRefreshSkipsUnchanged: `refresh` does nothing when no image
	// was added, removed or changed (systemd#41523, NEWS of 260); before,
	// it always unmerged and merged again.
	VersionRefreshSkipsUnchanged = 260
	// VersionRestartsUnits: systemd-sysext itself restarts the units listed
	// in EXTENSION_RESTART_UNITS= and reloads-or-restarts those in
	// EXTENSION_RELOAD_OR_RESTART_UNITS= after merge, refresh and unmerge
	// (systemd#42368, NEWS of 262).
	VersionRestartsUnits = 262
)

// sharedLibGlobs are where distributions put libsystemd-shared-N.so, the
// private library every systemd binary links against: Debian and Ubuntu
// under the multiarch triplet, Fedora and Arch directly under usr/lib or
// usr/lib64.
var sharedLibGlobs = []string{
	"/usr/lib/*/systemd/libsystemd-shared-*.so",
	"/usr/lib/systemd/libsystemd-shared-*.so",
	"/usr/lib64/systemd/libsystemd-shared-*.so",
}

// SystemdVersion returns the major version of the systemd installed under
// root (262 for forky, 257 for trixie).
//
// It reads the file name of libsystemd-shared-N.so under the root: that
// needs no process, works for a root that is not running (a staged
// deployment, an image being built) and for any architecture, and it
// changes exactly when systemd-sysext does, since the binary links against
// that very file. Distributions suffix the name differently
// ("-262.so", "-256.11-1.fc41.so"): only the leading number is read. Should
// two be present (mid-upgrade), the highest wins. Only when no such file is
// found and root is the host is `systemd-sysext --version` asked.
func SystemdVersion(ctx context.Context, root rootfs.Root) (int, error) {
	best := 0
	for _, g := range sharedLibGlobs {
		matches, err := filepath.Glob(root.Path(g))
		if err != nil {
			return 0, fmt.Errorf("looking for libsystemd-shared under %s: %w", root.Dir(), err)
		}
		for _, m := range matches {
			if v := leadingNumber(strings.TrimPrefix(filepath.Base(m), "libsystemd-shared-")); v > best {
				best = v
			}
		}
	}
	if best > 0 {
		return best, nil
	}
	if !root.IsHost() {
		return 0, fmt.Errorf("%w under %s: no libsystemd-shared-N.so in usr/lib", ErrNoSystemd, root.Dir())
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, DefaultBinary, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%w: no libsystemd-shared-N.so in usr/lib, and %s --version: %v", ErrNoSystemd, DefaultBinary, err)
	}
	return ParseVersionOutput(string(out))
}

// ParseVersionOutput reads the major version from the first line of
// `systemd-sysext --version` ("systemd 262 (262-1)").
func ParseVersionOutput(out string) (int, error) {
	first, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(first)
	if len(f) < 2 || f[0] != "systemd" {
		return 0, fmt.Errorf("unexpected version output %q", first)
	}
	v := leadingNumber(f[1])
	if v == 0 {
		return 0, fmt.Errorf("no version number in %q", first)
	}
	return v, nil
}

// leadingNumber is the decimal number s starts with, 0 when none.
func leadingNumber(s string) int {
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(s[:end])
	if err != nil {
		return 0
	}
	return n
}

// RestartsUnitsItself reports whether systemd-sysext of this major version
// restarts the units an extension lists in EXTENSION_RESTART_UNITS= and
// EXTENSION_RELOAD_OR_RESTART_UNITS= on its own when it merges, refreshes
// or unmerges (version >= VersionRestartsUnits). When it does, sysextd must
// not restart them a second time; when it does not, sysextd does.
// 0 (unknown) answers false: a restart sysextd does is then at worst a
// second restart, whereas a skipped one leaves the old binary running.
func RestartsUnitsItself(version int) bool {
	return version >= VersionRestartsUnits
}

// RefreshSkipsUnchanged reports whether `systemd-sysext refresh` of this
// major version does nothing when no image changed (version >=
// VersionRefreshSkipsUnchanged).
func RefreshSkipsUnchanged(version int) bool {
	return version >= VersionRefreshSkipsUnchanged
}
