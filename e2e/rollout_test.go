//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/release"
)

// publishAt serves b as a release of SpamTagger/sysext-PACKAGE published
// at, with extra assets (release.json).
func (a *appliance) publishAt(b *Built, at time.Time, extra map[string][]byte) {
	a.t.Helper()
	fields := map[string]string{}
	for _, f := range b.Release {
		fields[f.Key] = f.Value
	}
	release.Publish(a.t, a.gh, release.Ext{Package: b.Package, Version: b.Version, Image: b.Name, Codename: a.dist.Suite,
		ImagePath: b.Path, ManifestFields: fields, Release: fields, Extra: extra, PublishedAt: at})
}

// TestWithdrawnReleaseLeavesTheAppliance (issue 22, "a withdrawn release
// leaves every appliance that had it"): an appliance installed 1.0-2
// fresh, so no previous image is kept. The vendor withdraws 1.0-2; on its
// next check, with no operator, sysextd goes to 1.0-1, the newest release
// not withdrawn, downloading it, and restarts the service (the update
// action); list then says the newest release is withdrawn.
func TestWithdrawnReleaseLeavesTheAppliance(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
	a.c.CopyIn(t, GoBuild(t, "./cmd/sysextd"), "/usr/local/bin/sysextd", 0o755)
	a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(`[e2e-wd]
url = "https://github.com/SpamTagger/sysext-e2e-wd"
update = "service: e2e-wd"
`), 0o644)
	a.c.WriteFile(t, "/etc/sysextd/sysextd.toml", []byte(fmt.Sprintf("github_api = %q\ninterval = \"24h\"\nrandomized_delay = \"0s\"\nprobation = \"0s\"\n", a.gh.URL())), 0o644)

	v1 := BuildServiceExtension(t, "e2e-wd", "1.0-1", ExtOptions{})
	v2 := BuildServiceExtension(t, "e2e-wd", "1.0-2", ExtOptions{})
	day := time.Now().UTC().Truncate(time.Second).Add(-48 * time.Hour)
	a.publishAt(v1, day, map[string][]byte{"release.json": []byte(`{"version":"1.0-1"}`)})
	a.publishAt(v2, day.Add(time.Hour), map[string][]byte{"release.json": []byte(`{"version":"1.0-2"}`)})
	if out := a.mustCtl("install", "e2e-wd"); !strings.Contains(out, "1.0-2") {
		t.Fatalf("install output %q, want 1.0-2", out)
	}
	a.c.WaitExec(t, 10*time.Second, "grep", "-qx", "1.0-2", "/run/e2e-wd/started-version")

	// The vendor withdraws 1.0-2 (sysext-build withdraw rewrites its
	// release.json the same way).
	a.gh.Unpublish("SpamTagger", "sysext-e2e-wd")
	a.publishAt(v1, day, map[string][]byte{"release.json": []byte(`{"version":"1.0-1"}`)})
	a.publishAt(v2, day.Add(time.Hour), map[string][]byte{"release.json": []byte(`{"version":"1.0-2","withdrawn":true}`)})

	start := time.Now()
	a.c.MustExec(t, "systemd-run", "--unit=sysextd", "-p", "Type=notify", "-p", "NotifyAccess=main", "/usr/local/bin/sysextd")
	a.c.WaitExec(t, 60*time.Second, "grep", "-qx", "1.0-1", "/usr/lib/e2e-wd/version")
	a.c.WaitExec(t, 10*time.Second, "grep", "-qx", "1.0-1", "/run/e2e-wd/started-version")
	t.Logf("MEASURED left the withdrawn 1.0-2 for 1.0-1 %s after sysextd started", time.Since(start).Round(100*time.Millisecond))
	if got := a.unit("ActiveState", "e2e-wd.service"); got != "active" {
		t.Errorf("e2e-wd is %q on 1.0-1, want active", got)
	}
	if j := a.c.Journal(t, "sysextd.service"); !strings.Contains(j, "1.0-2") {
		t.Errorf("the journal does not mention the withdrawn release:\n%s", tail(j, 30))
	}
	if l := a.mustCtl("list"); !strings.Contains(l, "e2e-wd: available 1.0-2 is withdrawn") {
		t.Errorf("list does not say the newest release is withdrawn:\n%s", l)
	}
	if st := a.state()["e2e-wd"]; st.Version != "1.0-1" {
		t.Errorf("state: %+v, want 1.0-1", st)
	}
}
