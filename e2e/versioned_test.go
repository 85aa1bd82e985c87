//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// TestVersionedDirsAndOrder pins three systemd-sysext 257 behaviours that
// the OS-upgrade design rests on (docs/upgrades.md, docs/systemd-sysext.md):
// what a NAME.raw.v/ directory picks when its newest image is built for
// another OS, which of two images shipping one file is seen, and which of
// two same-named images in /run/extensions and /var/lib/extensions merges.
func TestVersionedDirsAndOrder(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	// Other tests on this host allocate loop devices too: the kernel may
	// hand out loopN beyond the default 32 nodes (docs/e2e.md).
	c := Boot(t, BootOptions{Base: base, LoopDevices: 512})
	build := func(name, versionID, file, content string) string {
		rel := sqfs.DefaultRelease(name)
		rel["VERSION_ID"] = versionID
		return sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: name, Release: rel, Files: map[string]string{file: content}})
	}
	cat := func(p string) string {
		out, _, code := c.Exec(t, "cat", p)
		if code != 0 {
			return "<missing>"
		}
		return strings.TrimSpace(out)
	}
	refresh := func() {
		out, errOut, code := c.Exec(t, "systemd-sysext", "refresh")
		t.Logf("systemd-sysext refresh: exit %d\n%s%s", code, out, errOut)
	}

	// 1. NAME.raw.v/ with a build for this OS (13) and a newer one for 14.
	c.CopyIn(t, build("sysext-v", "13", "usr/lib/sysext-v/version", "1"), "/var/lib/extensions/sysext-v.raw.v/sysext-v_1.raw", 0o644)
	c.CopyIn(t, build("sysext-v", "14", "usr/lib/sysext-v/version", "2"), "/var/lib/extensions/sysext-v.raw.v/sysext-v_2.raw", 0o644)
	refresh()
	merged := mergedExtensions(t, c, "/usr")
	got := cat("/usr/lib/sysext-v/version")
	t.Logf(".v/ with builds for 13 (v1) and 14 (v2) on 13: merged %v, version file %q", merged, got)
	if len(merged) != 0 || got != "<missing>" {
		t.Errorf(".v/ merged %v (version %q); docs/upgrades.md says it picks the newest build, for 14, and systemd-sysext refuses it: update the doc", merged, got)
	}
	c.MustExec(t, "rm", "-rf", "/var/lib/extensions/sysext-v.raw.v")

	// 2. Two images ship one file: which copy is seen.
	c.CopyIn(t, build("sysext-zzz", "13", "usr/lib/common", "zzz"), "/var/lib/extensions/sysext-zzz.raw", 0o644)
	c.CopyIn(t, build("sysext-aaa", "13", "usr/lib/common", "aaa"), "/var/lib/extensions/sysext-aaa.raw", 0o644)
	refresh()
	if got := cat("/usr/lib/common"); got != "zzz" {
		t.Errorf("/usr/lib/common = %q, want sysext-zzz's: the image name that sorts last wins (as on 252)", got)
	}
	c.MustExec(t, "rm", "-f", "/var/lib/extensions/sysext-zzz.raw", "/var/lib/extensions/sysext-aaa.raw")

	// 3. The same image name in /run/extensions and /var/lib/extensions.
	c.CopyIn(t, build("sysext-p", "13", "usr/lib/sysext-p/where", "var"), "/var/lib/extensions/sysext-p.raw", 0o644)
	run := build("sysext-p", "13", "usr/lib/sysext-p/where", "run")
	// /run is the container's own tmpfs: copy through /var/tmp.
	c.CopyIn(t, run, "/var/tmp/sysext-p.raw", 0o644)
	c.MustExec(t, "mkdir", "-p", "/run/extensions")
	c.MustExec(t, "mv", "/var/tmp/sysext-p.raw", "/run/extensions/sysext-p.raw")
	refresh()
	t.Logf("same name in /run/extensions and /var/lib/extensions: %q is seen", cat("/usr/lib/sysext-p/where"))
	if got := cat("/usr/lib/sysext-p/where"); got != "run" {
		t.Errorf("/usr/lib/sysext-p/where = %q, want the /run/extensions copy (earlier in the search path)", got)
	}
}
