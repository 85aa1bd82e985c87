package image_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/image/imagetest"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
)

// TestGPTWithHostSystemd checks the GPT cases of the agreement table
// against the host's real systemd-sysext (252 on the build machine) under
// --root: the e2e container cannot dissect GPT images (no partition device
// nodes in nspawn), the host can. Tier 2: root, private mount namespace.
func TestGPTWithHostSystemd(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		if _, err := exec.LookPath("systemd-sysext"); err != nil {
			t.Skipf("SKIP: no systemd-sysext: %v", err)
		}
		deb, _ := imagetest.Arch()
		n := 0
		for _, c := range imagetest.Cases() {
			if !strings.HasPrefix(c.Format, "gpt") {
				continue
			}
			n++
			root := nsroot.NewRoot(t)
			if err := os.WriteFile(root.Path("/etc/os-release"), c.Host.OSRelease(), 0o644); err != nil {
				t.Fatal(err)
			}
			img := root.Path("/var/lib/extensions/" + c.FileName())
			if err := imagetest.Build(t.Context(), img, c.Format, c.Comp, c.Files, c.Args...); err != nil {
				t.Fatal(err)
			}
			out, _ := exec.CommandContext(t.Context(), "systemd-sysext", "--root="+root.Dir(), "refresh").CombinedOutput()
			_, err := os.Stat(filepath.Join(root.Dir(), c.Marker()))
			sdMerge := err == nil
			_ = exec.CommandContext(t.Context(), "systemd-sysext", "--root="+root.Dir(), "unmerge").Run()
			nsroot.UnmountUnder(t, root.Dir())

			ourMerge, why := image.Verdict(t.Context(), img, c.FileName(), c.Name,
				image.Host{ID: c.Host.ID, IDLike: c.Host.IDLike, VersionID: c.Host.VersionID, SysextLevel: c.Host.SysextLevel, Arch: deb})
			t.Logf("%s: host systemd merge=%v (%s), sysextd merge=%v %s", c.Name, sdMerge, strings.TrimSpace(string(out)), ourMerge, why)
			if sdMerge != c.Merge {
				t.Errorf("%s: table says merge=%v, host systemd says %v", c.Name, c.Merge, sdMerge)
			}
			if ourMerge != sdMerge {
				t.Errorf("%s: sysextd says merge=%v, host systemd %v", c.Name, ourMerge, sdMerge)
			}
		}
		if n == 0 {
			t.Fatal("no GPT case in the table")
		}
	})
}
