package image_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/image/imagetest"
)

// TestLz4Squashfs reads real `mksquashfs -comp lz4` images (plain and -Xhc)
// without systemd-dissect: a multi-block file, a fragment-packed small file
// and a symlink come back byte for byte, and the release is read by
// go-diskfs. Before the raw-block patch (third_party/go-diskfs/PATCHED.md)
// every lz4 read failed with "lz4: bad magic number".
func TestLz4Squashfs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 3<<20+12345) // 24 data blocks of 128 KiB and a partial one
	for i := range big {
		// Compressible but not trivial: lz4 must emit matches and literals.
		big[i] = byte(rng.IntN(16)) + 'a'
	}
	rel := "ID=debian\nVERSION_ID=13\n"
	files := []imagetest.File{
		{Path: "usr/lib/extension-release.d/extension-release.lz", Data: rel},
		{Path: "usr/share/lz/big", Data: string(big)},
		{Path: "usr/share/lz/small", Data: "a fragment\n"},
		{Path: "usr/share/lz/link", Link: "small"},
	}
	for _, extra := range [][]string{nil, {"-Xhc"}} {
		t.Run(fmtArgs(extra), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "lz.raw")
			if err := imagetest.Build(t.Context(), p, "squashfs", "lz4", files, extra...); err != nil {
				t.Skipf("SKIP: mksquashfs -comp lz4: %v", err)
			}
			info, err := image.InspectContext(t.Context(), p)
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			if info.Compression != "lz4" || info.Reader != "go-diskfs" {
				t.Errorf("compression %q read by %q, want lz4 by go-diskfs", info.Compression, info.Reader)
			}
			if info.Fields["VERSION_ID"] != "13" {
				t.Errorf("release %v, want VERSION_ID=13", info.Fields)
			}
			got, err := image.ReadFile(p, "usr/share/lz/big")
			if err != nil {
				t.Fatalf("reading big: %v", err)
			}
			if !bytes.Equal(got, big) {
				t.Errorf("big: %d bytes read, differ from the %d written", len(got), len(big))
			}
			for _, path := range []string{"usr/share/lz/small", "/usr/share/lz/link"} {
				if got, err := image.ReadFile(p, path); err != nil || string(got) != "a fragment\n" {
					t.Errorf("%s = %q, %v; want the fragment's text", path, got, err)
				}
			}
			// Damaged lz4 data is an error, never a panic nor the file.
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for i := 200; i < 400; i++ {
				data[i] ^= 0x5a
			}
			bad := filepath.Join(t.TempDir(), "bad.raw")
			if err := os.WriteFile(bad, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if got, err := image.ReadFile(bad, "usr/share/lz/big"); err == nil && bytes.Equal(got, big) {
				t.Error("a damaged first block read back as the original file")
			}
		})
	}
}

func fmtArgs(a []string) string {
	if len(a) == 0 {
		return "default"
	}
	return a[0]
}
