package image

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spamtagger/sysextd/internal/image/imagetest"
)

// TestAgreementTable runs every crafted image of imagetest.Cases through
// Inspect and Validate and compares with the verdict systemd-sysext 257
// gives (e2e/agree_test.go checks those verdicts against the real systemd).
func TestAgreementTable(t *testing.T) {
	cases := imagetest.Cases()
	if len(cases) < 50 {
		t.Fatalf("only %d cases, want at least 50", len(cases))
	}
	deb, _ := imagetest.Arch()
	dir := t.TempDir()
	agree := 0
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.NeedsDissect && os.Geteuid() != 0 {
				t.Skipf("SKIP (not root): %s is read through systemd-dissect, which mounts it", c.Name)
			}
			p := filepath.Join(dir, c.FileName())
			if err := imagetest.Build(t.Context(), p, c.Format, c.Comp, c.Files); err != nil {
				t.Fatal(err)
			}
			merge, why := Verdict(t.Context(), p, c.FileName(), c.Name,
				Host{ID: c.Host.ID, IDLike: c.Host.IDLike, VersionID: c.Host.VersionID, SysextLevel: c.Host.SysextLevel, Arch: deb})
			want := c.Merge && !c.Ours
			if merge != want {
				t.Errorf("%s: sysextd says merge=%v (%s), want %v", c.Name, merge, why, want)
				return
			}
			agree++
			t.Logf("%s: merge=%v %s", c.Name, merge, why)
		})
	}
	t.Logf("agreement with the expected table: %d of %d", agree, len(cases))
}
