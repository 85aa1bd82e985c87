//go:build e2e

package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/release"
)

// TestStagedOSUpgrade: bootc has staged a forky (14) deployment. sysextd's
// check fetches and verifies the forky build of the installed extension
// ahead of time; after the upgrade and a reboot, with GitHub gone, the
// forky build is merged and its service runs, before any network.
func TestStagedOSUpgrade(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
	a.c.CopyIn(t, GoBuild(t, "./cmd/sysextd"), "/usr/local/bin/sysextd", 0o755)
	a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(`[e2e-up]
url = "https://github.com/SpamTagger/sysext-e2e-up"
`), 0o644)

	trixie := BuildServiceExtension(t, "e2e-up", "1.0-1", ExtOptions{})
	a.publish(trixie)
	a.mustCtl("install", "e2e-up")
	forky := BuildServiceExtension(t, "e2e-up", "1.0-1+forky1", ExtOptions{Release: map[string]string{"VERSION_ID": "14", "VERSION_CODENAME": "forky"}})
	fields := map[string]string{}
	for _, f := range forky.Release {
		fields[f.Key] = f.Value
	}
	release.Publish(t, a.gh, release.Ext{Package: forky.Package, Version: forky.Version, Image: forky.Name, Codename: "forky",
		ImagePath: forky.Path, ManifestFields: fields, Release: fields, PublishedAt: time.Now().Add(time.Minute)})

	// bootc, as far as sysextd asks it: a staged deployment whose tree says 14.
	status, err := os.ReadFile("../internal/upgrade/testdata/bootc-status-staged.json")
	if err != nil {
		t.Fatal(err)
	}
	a.c.WriteFile(t, "/usr/local/share/bootc-status.json", status, 0o644)
	a.c.WriteFile(t, "/usr/local/bin/bootc", []byte("#!/bin/sh\n[ \"$1 $2\" = \"status --json\" ] && exec cat /usr/local/share/bootc-status.json\nexit 1\n"), 0o755)
	tree := "/ostree/deploy/default/deploy/3c6dad657109522e0b2e49bf44b5420f16f0b438b5b9357e5132211cfbad135d.0"
	forkyRelease := "ID=debian\nVERSION_ID=14\nVERSION_CODENAME=forky\nPRETTY_NAME=\"Debian GNU/Linux 14 (forky)\"\n"
	a.c.WriteFile(t, tree+"/usr/lib/os-release", []byte(forkyRelease), 0o644)

	out, stderr, code := a.c.Exec(t, "env", "SYSEXT_GITHUB_API="+a.gh.URL(), "sysextd", "--once")
	if code != 0 {
		t.Fatalf("sysextd --once: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "fetched and verified for debian 14") {
		t.Errorf("sysextd did not say it fetched the forky build:\n%s", stderr)
	}
	if !a.exists("/var/lib/sysextd/staged/14/sysext-e2e-up.raw") {
		t.Fatal("no staged forky build")
	}
	if got := a.cat("/usr/lib/e2e-up/version"); got != "1.0-1" {
		t.Fatalf("before the upgrade the merged version is %q, want 1.0-1 still", got)
	}

	// The upgrade: the booted OS is forky now (os-release in /etc wins),
	// and GitHub is out of reach.
	a.c.MustExec(t, "rm", "-f", "/etc/os-release")
	a.c.WriteFile(t, "/etc/os-release", []byte(forkyRelease), 0o644)
	a.gh.Close()
	a.c.Reboot(t)
	out, stderr, code = a.c.Exec(t, "env", "SYSEXT_GITHUB_API=http://127.0.0.1:9", "sysextd", "--once")
	t.Logf("sysextd --once after the reboot, offline: exit %d\n%s%s", code, out, stderr)
	if got := a.cat("/usr/lib/e2e-up/version"); got != "1.0-1+forky1" {
		t.Fatalf("after the reboot into forky the merged version is %q, want the staged 1.0-1+forky1", got)
	}
	if got := a.unit("ActiveState", "e2e-up.service"); got != "active" {
		t.Errorf("e2e-up.service is %q after the first forky boot\n%s", got, a.c.Journal(t, "e2e-up.service"))
	}
	if a.exists("/var/lib/sysextd/staged/14/sysext-e2e-up.raw") {
		t.Error("the consumed staged build is still there")
	}
	if hist := a.mustCtl("history", "e2e-up"); !strings.Contains(hist, "activate-staged") {
		t.Errorf("history does not show the staged activation:\n%s", hist)
	}
}
