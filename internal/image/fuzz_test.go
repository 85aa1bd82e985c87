package image

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/image/imagetest"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// FuzzInspect feeds arbitrary bytes, and valid images with bytes changed,
// to Inspect and ReadFile: they must return, never panic.
func FuzzInspect(f *testing.F) {
	img := sqfs.Build(f, f.TempDir(), sqfs.Spec{Name: "f", Release: release(nil),
		Files: map[string]string{"usr/lib/systemd/system/a.service": enabledService}})
	good, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, uint16(0), byte(0))
	f.Add(good, uint16(100), byte(0xff))
	f.Add(good[:200], uint16(0), byte(0))
	f.Add([]byte("hsqs"), uint16(0), byte(0))
	// erofs and GPT seeds; the systemd-dissect fallback is switched off so
	// that no input gets mounted.
	dissectBinary = "/nonexistent/systemd-dissect"
	for _, format := range []string{"erofs", "gpt-usr"} {
		p := filepath.Join(f.TempDir(), format+".raw")
		files := []imagetest.File{{Path: ReleaseDir + "/extension-release.f", Data: "ID=debian\n"}, {Path: "etc/a.conf", Data: "a"}}
		if err := imagetest.Build(f.Context(), p, format, "", files); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(1100), byte(0x5a))
	}
	// Crafted names, as the trust review made them (uncompressed images
	// whose names were rewritten): the fuzzer starts from a bad name.
	for _, format := range []string{"squashfs", "erofs"} {
		p := filepath.Join(f.TempDir(), format+"-names.raw")
		files := []imagetest.File{{Path: ReleaseDir + "/extension-release.f", Data: "ID=_any\n"}, {Path: "etc/QZQZQZQZ/conf", Data: "x"}}
		var extra []string
		if format == "squashfs" {
			extra = []string{"-noI", "-noD", "-noF", "-noX"}
		}
		if err := imagetest.Build(f.Context(), p, format, "", files, extra...); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.ReplaceAll(b, []byte("QZQZQZQZ"), []byte("../../ab")), uint16(0), byte(0))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, at uint16, b byte) {
		data = bytes.Clone(data)
		if len(data) > 0 {
			data[int(at)%len(data)] ^= b
		}
		p := filepath.Join(dir, "fuzz.raw")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := Inspect(p)
		if err == nil && info == nil {
			t.Fatal("Inspect returned neither info nor error")
		}
		_, _ = ReadFile(p, ReleaseDir+"/extension-release.f")
		// Whatever the bytes, the payload reader never returns a path that
		// is not clean or has a component unsquashfs would refuse.
		files, err := ReadPayload(t.Context(), p, "etc")
		if err == nil {
			for _, pf := range files {
				if path.Clean(pf.Path) != pf.Path || !strings.HasPrefix(pf.Path, "/etc") {
					t.Fatalf("ReadPayload returned %q", pf.Path)
				}
				for _, c := range strings.Split(strings.TrimPrefix(pf.Path, "/"), "/") {
					if checkName("", c) != nil {
						t.Fatalf("ReadPayload returned %q", pf.Path)
					}
				}
			}
		}
	})
}
