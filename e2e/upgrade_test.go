//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/release"
)

// stagedDeploy is where ostree keeps the deployment named by
// internal/upgrade/testdata/bootc-status-staged.json (stateroot default,
// checksum, serial 0).
const stagedDeploy = "/sysroot/ostree/deploy/default/deploy/3c6dad657109522e0b2e49bf44b5420f16f0b438b5b9357e5132211cfbad135d.0"

// TestStagedOSUpgrade: a trixie appliance whose bootc has staged a forky
// deployment, and that deployment's tree is a real forky root (the cached
// forky base, debootstrapped, systemd 262, no VERSION_ID in its
// os-release). sysextd's check on trixie fetches and verifies the forky
// build of the installed extension into staged/forky/. Then the reboot
// into forky: a container booted from that very tree with the trixie
// appliance's /var, GitHub gone; sysextd's start merges the forky build
// and its service runs, with no network.
//
// bootc itself is the one fake: a script printing its `status --json`
// (it does not run here, docs/upgrades.md). What bootc does at shutdown
// is done by hand: the 3-way /etc merge (the appliance's sysext.toml goes
// into the new tree's /etc) and the product in the new image (sysextd and
// sysextctl copied into its /usr/local/bin), both after the forky boot and
// before sysextd runs there.
func TestStagedOSUpgrade(t *testing.T) {
	requireRoot(t)
	trixieBase := EnsureBase(t)
	forkyBase := EnsureBaseFor(t, Forky)
	// The deployment is the cached forky root itself, read-only as an
	// ostree deployment is. (A writable overlay over it would not do: the
	// container booted from it is an overlay already, and systemd-sysext's
	// overlay over /usr would then exceed the kernel's stacking depth, 2.)
	tree := forkyBase.Dir
	sysextd, sysextctl := GoBuild(t, "./cmd/sysextd"), GoBuild(t, "./cmd/sysextctl")
	const conf = `[e2e-up]
url = "https://github.com/SpamTagger/sysext-e2e-up"
`
	gh := fakegithub.New()
	t.Cleanup(gh.Close)
	a := &appliance{t: t, gh: gh, dist: Trixie, c: Boot(t, BootOptions{Base: trixieBase,
		NspawnArgs: []string{"--bind-ro=" + tree + ":" + stagedDeploy}})}
	a.c.CopyIn(t, sysextctl, "/usr/local/bin/sysextctl", 0o755)
	a.c.CopyIn(t, sysextd, "/usr/local/bin/sysextd", 0o755)
	a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(conf), 0o644)

	a.publish(a.svc(t, "e2e-up", "1.0-1", ExtOptions{}))
	a.mustCtl("install", "e2e-up")
	forky := BuildServiceExtension(t, "e2e-up", "1.0-1+forky1", ExtOptions{Dist: &Forky})
	if forky.Get("VERSION_ID") != "14" || forky.Get("VERSION_CODENAME") != "forky" {
		t.Fatalf("the forky build carries VERSION_ID=%q VERSION_CODENAME=%q, want 14 and forky (docs/publishing.md)", forky.Get("VERSION_ID"), forky.Get("VERSION_CODENAME"))
	}
	fields := map[string]string{}
	for _, f := range forky.Release {
		fields[f.Key] = f.Value
	}
	release.Publish(t, gh, release.Ext{Package: forky.Package, Version: forky.Version, Image: forky.Name, Codename: "forky",
		ImagePath: forky.Path, ManifestFields: fields, Release: fields, PublishedAt: time.Now().Add(time.Minute)})

	// The staged tree is forky's own, as the appliance sees it.
	if got := a.c.MustExec(t, "sh", "-c", ". "+stagedDeploy+"/usr/lib/os-release; echo \"$VERSION_CODENAME/$VERSION_ID\""); strings.TrimSpace(got) != "forky/" {
		t.Fatalf("the staged tree's os-release says %q, want forky without VERSION_ID", got)
	}
	status, err := os.ReadFile("../internal/upgrade/testdata/bootc-status-staged.json")
	if err != nil {
		t.Fatal(err)
	}
	a.c.WriteFile(t, "/usr/local/share/bootc-status.json", status, 0o644)
	a.c.WriteFile(t, "/usr/local/bin/bootc", []byte("#!/bin/sh\n[ \"$1 $2\" = \"status --json\" ] && exec cat /usr/local/share/bootc-status.json\nexit 1\n"), 0o755)

	out, stderr, code := a.c.Exec(t, "env", "SYSEXT_GITHUB_API="+gh.URL(), "sysextd", "--once")
	if code != 0 {
		t.Fatalf("sysextd --once: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "fetched and verified for debian forky") {
		t.Errorf("sysextd did not say it fetched the forky build:\n%s", stderr)
	}
	const staged = "/var/lib/sysextd/staged/forky/sysext-e2e-up.raw"
	if !a.exists(staged) {
		t.Fatalf("no staged forky build at %s:\n%s", staged, a.c.MustExec(t, "find", "/var/lib/sysextd/staged"))
	}
	if got := a.cat("/usr/lib/e2e-up/version"); got != "1.0-1" {
		t.Fatalf("before the upgrade the merged version is %q, want 1.0-1 still", got)
	}

	// The reboot into forky: trixie powers off; the staged tree boots with
	// the same /var, and GitHub is out of reach.
	a.c.stop(t)
	gh.Close()
	f := Boot(t, BootOptions{Base: forkyBase, NspawnArgs: []string{"--bind=" + filepath.Join(a.c.Root(), "var") + ":/var"}})
	f.CopyIn(t, sysextd, "/usr/local/bin/sysextd", 0o755)
	f.CopyIn(t, sysextctl, "/usr/local/bin/sysextctl", 0o755)
	f.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(conf), 0o644)
	fa := &appliance{t: t, gh: gh, dist: Forky, c: f}
	if got := fa.cat("/etc/os-release"); !strings.Contains(got, "VERSION_CODENAME=forky") || strings.Contains(got, "VERSION_ID=") {
		t.Fatalf("booted into %q, want forky without VERSION_ID", got)
	}
	sd := strings.Fields(f.MustExec(t, "systemctl", "--version"))
	t.Logf("booted forky: systemd %s", sd[1])

	out, stderr, code = f.Exec(t, "env", "SYSEXT_GITHUB_API=http://127.0.0.1:9", "sysextd", "--once")
	t.Logf("sysextd --once on forky, offline: exit %d (the check after it has no network)\n%s%s", code, out, stderr)
	if !strings.Contains(stderr, "e2e-up updated from 1.0-1 to 1.0-1+forky1") {
		t.Errorf("sysextd did not say it put the staged build in place:\n%s", stderr)
	}
	if got := fa.cat("/usr/lib/e2e-up/version"); got != "1.0-1+forky1" {
		t.Fatalf("after the reboot into forky the merged version is %q, want the staged 1.0-1+forky1", got)
	}
	if got := fa.cat("/usr/lib/extension-release.d/extension-release.sysext-e2e-up"); !strings.Contains(got, "VERSION_CODENAME=forky") {
		t.Errorf("the merged image is not the forky build:\n%s", got)
	}
	f.WaitExec(t, 10*time.Second, "grep", "-qx", "1.0-1+forky1", "/run/e2e-up/started-version")
	if got := fa.unit("ActiveState", "e2e-up.service"); got != "active" {
		t.Errorf("e2e-up.service is %q after the first forky boot\n%s", got, f.Journal(t, "e2e-up.service"))
	}
	if fa.exists(staged) {
		t.Error("the consumed staged build is still there")
	}
	hist, _, code := f.Exec(t, "sysextctl", "--github-api", "http://127.0.0.1:9", "history", "e2e-up")
	if code != 0 || !strings.Contains(hist, "activate-staged") {
		t.Errorf("history does not show the staged activation (exit %d):\n%s", code, hist)
	}
}
