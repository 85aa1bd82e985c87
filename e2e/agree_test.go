//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/image/imagetest"
	"github.com/spamtagger/sysextd/internal/merge"
)

// TestAgreeWithSystemd runs every crafted image of imagetest.Cases through
// the real systemd-sysext 257 of a booted trixie and 262 of a booted forky
// (subtests per dist), one image at a time with
// the case's host os-release, and asserts, image by image, that:
//   - systemd's verdict is the table's (the table is checked, not trusted);
//   - sysextd's validator (image.Verdict, what install runs) gives the same
//     verdict, except where the table marks a check as sysextd's own.
func TestAgreeWithSystemd(t *testing.T) {
	requireRoot(t)
	ForEachDist(t, agreeWithSystemd)
}

func agreeWithSystemd(t *testing.T, base *Base) {
	c := Boot(t, BootOptions{Base: base, LoopDevices: 256}) // the machine's loop devices are shared: indexes run high
	version := strings.SplitN(c.MustExec(t, "systemctl", "--version"), "\n", 2)[0]
	deb, _ := imagetest.Arch()
	dir := t.TempDir()

	osRelease := c.path("/etc/os-release")
	orig, err := os.Readlink(osRelease)
	if err != nil {
		t.Fatalf("%s's /etc/os-release is not a symlink: %v", base.Dist.Suite, err)
	}
	t.Cleanup(func() {
		os.Remove(osRelease)
		os.Symlink(orig, osRelease)
	})

	cases := imagetest.Cases()
	var tableOK, agree, ours, compared, gpt, silent, quoted int
	var report strings.Builder
	for _, k := range cases {
		p := filepath.Join(dir, k.FileName())
		if err := imagetest.Build(t.Context(), p, k.Format, k.Comp, k.Files, k.Args...); err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		os.Remove(osRelease)
		c.WriteFile(t, "/etc/os-release", k.Host.OSRelease(), 0o644)
		c.CopyIn(t, p, "/var/lib/extensions/"+k.FileName(), 0o644)
		// A skip without an error is explained only at debug level: ask
		// again as merge.Sysext.Why does, after the verdict line.
		script := fmt.Sprintf(`systemd-sysext refresh 2>&1; echo "rc=$?"
test -e /%s && echo MERGED
echo DEBUG:
test -e /%s || SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_COLOR=0 systemd-sysext refresh 2>&1
systemd-sysext unmerge >/dev/null 2>&1
rm -f /var/lib/extensions/%s`, k.Marker(), k.Marker(), k.FileName())
		run := func() (verdict, debug string) {
			out, _, _ := c.Exec(t, "sh", "-c", script)
			verdict, debug, _ = strings.Cut(out, "DEBUG:\n")
			return verdict, debug
		}
		out, debug := run()
		for try := 1; try <= 10 && strings.Contains(out, "Device or resource busy"); try++ {
			// Loop devices are shared with every test on the machine:
			// an attach can race with another's. Not systemd's verdict.
			t.Logf("%s: %s (try %d, retrying)", k.Name, oneLine(out), try)
			time.Sleep(time.Second)
			c.CopyIn(t, p, "/var/lib/extensions/"+k.FileName(), 0o644)
			out, debug = run()
		}
		sdMerge := strings.Contains(out, "\nMERGED") || strings.HasPrefix(out, "MERGED")
		sdWhy := strings.TrimSpace(strings.Split(out, "rc=")[0])

		host := image.Host{ID: k.Host.ID, IDLike: k.Host.IDLike, VersionID: k.Host.VersionID, SysextLevel: k.Host.SysextLevel, Arch: deb}
		ourMerge, ourWhy := image.Verdict(t.Context(), p, k.FileName(), k.Name, host)

		if strings.HasPrefix(k.Format, "gpt") && strings.Contains(sdWhy, "Failed to read metadata") {
			// The nspawn container's /dev is a tmpfs without devtmpfs: the
			// loop device's partition nodes (/dev/loopNp1) never appear, so
			// systemd cannot dissect any GPT image here (docs/extension-release.md).
			gpt++
			fmt.Fprintf(&report, "%-30s NOT COMPARED (no partition device nodes in nspawn): %s | sysextd=%v %s\n", k.Name, oneLine(sdWhy), ourMerge, ourWhy)
			continue
		}
		if !sdMerge && strings.Contains(out, "rc=0") && !strings.HasPrefix(k.Format, "gpt") {
			// Skipped silently: what sysextd quotes when this happens.
			silent++
			name := strings.TrimSuffix(k.FileName(), ".raw")
			if q := merge.AboutImages(debug, []string{name}); strings.HasPrefix(q, "Extension ") && !strings.Contains(q, "; ") {
				quoted++
				sdWhy = "(debug) " + q
			} else {
				t.Errorf("%s: skipped without an error, and merge.AboutImages finds no single verdict line about '%s' in systemd's debug output (got %q)\n%s", k.Name, name, q, debug)
			}
		}
		if sdMerge == k.Merge {
			tableOK++
		} else {
			t.Errorf("%s: table says systemd merge=%v, systemd %s says %v (%s)", k.Name, k.Merge, version, sdMerge, sdWhy)
		}
		compared++
		switch {
		case k.Ours:
			ours++
			if ourMerge {
				t.Errorf("%s: sysextd's own check should refuse it, but it merges", k.Name)
			}
		case ourMerge == sdMerge:
			agree++
		default:
			t.Errorf("%s: systemd merge=%v (%s), sysextd merge=%v (%s)", k.Name, sdMerge, sdWhy, ourMerge, ourWhy)
		}
		fmt.Fprintf(&report, "%-30s systemd=%-5v sysextd=%-5v %s | %s\n", k.Name, sdMerge, ourMerge, oneLine(sdWhy), ourWhy)
	}
	t.Logf("per image (systemd's output | sysextd's reason):\n%s", report.String())
	t.Logf("%s: table matches systemd on %d of %d images; sysextd agrees with systemd on %d of %d (plus %d refused by sysextd's own ARCH check); %d GPT images not comparable in nspawn; %d skipped without an error, systemd's debug reason quoted for %d",
		version, tableOK, compared, agree, compared-ours, ours, gpt, silent, quoted)
	if compared < 50 {
		t.Errorf("only %d images compared with systemd, want at least 50", compared)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " / ")
	if len(s) > 140 {
		s = s[:140] + "…"
	}
	return s
}
