package image_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spamtagger/sysextd/internal/image"
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
			if err := imagetest.Build(t.Context(), p, c.Format, c.Comp, c.Files, c.Args...); err != nil {
				t.Fatal(err)
			}
			merge, why := image.Verdict(t.Context(), p, c.FileName(), c.Name,
				image.Host{ID: c.Host.ID, IDLike: c.Host.IDLike, VersionID: c.Host.VersionID, SysextLevel: c.Host.SysextLevel, Arch: deb})
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

// TestReaders pins which reader reads each format: a library where one
// reads it, systemd-dissect (root) only for the rest.
func TestReaders(t *testing.T) {
	want := map[string]string{
		"fmt-gzip": "go-diskfs", "fmt-zstd": "go-diskfs", "fmt-erofs": "go-erofs",
		"gpt-usr": "go-diskfs", "gpt-root": "go-diskfs",
		"fmt-lz4": "go-diskfs", "fmt-lz4-hc": "go-diskfs", "fmt-erofs-lz4": "systemd-dissect", "fmt-xz-bcj": "go-diskfs",
	}
	dir := t.TempDir()
	for _, c := range imagetest.Cases() {
		reader, ok := want[c.Name]
		if !ok {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			if reader == "systemd-dissect" && os.Geteuid() != 0 {
				t.Skipf("SKIP (not root): %s is read through systemd-dissect, which mounts it", c.Name)
			}
			p := filepath.Join(dir, c.FileName())
			if err := imagetest.Build(t.Context(), p, c.Format, c.Comp, c.Files, c.Args...); err != nil {
				t.Fatal(err)
			}
			info, err := image.InspectContext(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			if info.Reader != reader {
				t.Errorf("Reader = %q, want %q", info.Reader, reader)
			}
			if c.Format == "gpt-usr" && (len(info.TopLevel) != 1 || info.TopLevel[0] != "usr") {
				t.Errorf("TopLevel of a usr partition image = %q, want [usr]", info.TopLevel)
			}
		})
	}
}

// BenchmarkInspect measures one Inspect per reader: go-diskfs (gzip, lz4),
// go-erofs, and the systemd-dissect mount (compressed erofs, root only).
func BenchmarkInspect(b *testing.B) {
	for _, name := range []string{"fmt-gzip", "fmt-lz4", "fmt-erofs", "gpt-usr", "fmt-erofs-lz4"} {
		var c imagetest.Case
		for _, k := range imagetest.Cases() {
			if k.Name == name {
				c = k
			}
		}
		b.Run(name, func(b *testing.B) {
			if c.NeedsDissect && os.Geteuid() != 0 {
				b.Skip("SKIP (not root): systemd-dissect mounts the image")
			}
			p := filepath.Join(b.TempDir(), c.FileName())
			if err := imagetest.Build(b.Context(), p, c.Format, c.Comp, c.Files, c.Args...); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := image.InspectContext(b.Context(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
