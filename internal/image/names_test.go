package image

import (
	"bytes"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/image/imagetest"
)

// craftedImage builds an uncompressed image of format holding
// usr/QZQZQZQZ and etc/QZQZQZQZ/conf and rewrites every QZQZQZQZ to name
// (same length) in the bytes: no mkfs tool writes such names, an attacker
// does.
func craftedImage(t *testing.T, format, name string) string {
	t.Helper()
	const marker = "QZQZQZQZ"
	if len(name) != len(marker) {
		t.Fatalf("crafted name %q must have %d bytes", name, len(marker))
	}
	p := filepath.Join(t.TempDir(), format+".raw")
	files := []imagetest.File{
		{Path: ReleaseDir + "/extension-release.c", Data: "ID=_any\n"},
		{Path: "usr/" + marker, Data: "x"},
		{Path: "etc/" + marker + "/conf", Data: "x"},
	}
	var extra []string
	if format != "erofs" {
		extra = []string{"-noI", "-noD", "-noF", "-noX"}
	}
	if err := imagetest.Build(t.Context(), p, format, "", files, extra...); err != nil {
		t.Skipf("SKIPPING: cannot build a %s image here: %v", format, err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte(marker)); n == 0 {
		t.Fatalf("%s: the name is not stored in the clear", format)
	}
	data = bytes.ReplaceAll(data, []byte(marker), []byte(name))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every reader refuses entry names unsquashfs refuses ("invalid
// characters in name"): a "/" inside a name, "." or "..", NUL and other
// control characters, whether the name is met while inspecting (usr/) or
// reading the payload (etc/).
func TestCraftedNamesRefused(t *testing.T) {
	old := dissectBinary
	dissectBinary = "/nonexistent/systemd-dissect" // judge the readers, not the kernel
	t.Cleanup(func() { dissectBinary = old })
	for _, format := range []string{"squashfs", "erofs", "gpt-root"} {
		for _, name := range []string{"../../ab", "ab/../cd", "..\x00\x00\x00\x00\x00\x00", "abc\ndefg", "abc\x7fdefg"[:8]} {
			t.Run(format+"/"+filepath.Base(name), func(t *testing.T) {
				p := craftedImage(t, format, name)
				files, err := ReadPayload(t.Context(), p, "etc")
				if errors.Is(err, ErrBadName) {
					return
				}
				// A library that drops the entry itself (go-erofs skips
				// "." and ".." as the dot entries every directory has)
				// is fine too, as long as no bad name comes through.
				if err != nil {
					t.Fatalf("ReadPayload = %v, want %v or only good names", err, ErrBadName)
				}
				for _, f := range files {
					for _, c := range strings.Split(strings.TrimPrefix(f.Path, "/"), "/") {
						if checkName("", c) != nil || path.Clean(f.Path) != f.Path {
							t.Errorf("ReadPayload returned %q", f.Path)
						}
					}
				}
				if format != "erofs" || !strings.HasPrefix(name, "..\x00") {
					t.Errorf("ReadPayload = %d files, nil; want %v", len(files), ErrBadName)
				}
			})
		}
	}
	// The same image with a harmless name reads.
	p := craftedImage(t, "squashfs", "harmless")
	if _, err := ReadPayload(t.Context(), p, "etc"); err != nil {
		t.Errorf("a good name: %v", err)
	}
}

func TestCheckName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"a.b", true}, {"...", true}, {"ü", true},
		{"", false}, {".", false}, {"..", false}, {"a/b", false}, {"a\x00", false}, {"\t", false}, {"a\x7f", false},
	} {
		if err := checkName("d", tt.name); (err == nil) != tt.ok {
			t.Errorf("checkName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
