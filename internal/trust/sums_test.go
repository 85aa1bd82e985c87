package trust

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSums(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("B", 64)
	for _, tt := range []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{"sha256sum output", a + "  x.squashfs\n" + b + " *y.manifest\n", map[string]string{"x.squashfs": a, "y.manifest": strings.ToLower(b)}, ""},
		{"CRLF and blank lines", "\r\n" + a + "  x\r\n\n", map[string]string{"x": a}, ""},
		{"./ prefix", a + "  ./x\n", map[string]string{"x": a}, ""},
		{"same line twice", a + "  x\n" + a + "  x\n", map[string]string{"x": a}, ""},
		{"empty", "", map[string]string{}, ""},
		{"conflicting sums", a + "  x\n" + b + "  x\n", nil, "SHA256SUMS:2: x listed twice"},
		{"short hash", "abc  x\n", nil, "SHA256SUMS:1: want"},
		{"one space", a + " x\n", nil, "SHA256SUMS:1: want"},
		{"not hex", strings.Repeat("g", 64) + "  x\n", nil, "SHA256SUMS:1: sha256 is not hex"},
		{"path", a + "  ../x\n", nil, `invalid file name "../x"`},
		{"escaped", "\\" + a + "  x\\ny\n", nil, "SHA256SUMS:1: escaped file names"},
		{"carriage return in name", a + "  x\r\r\n", nil, `invalid file name "x\r"`},
		{"tab in name", a + "  x\ty\n", nil, `invalid file name "x\ty"`},
		{"no name", a + "  \n", nil, `SHA256SUMS:1: invalid file name ""`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSums([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseSums(f *testing.F) {
	a := strings.Repeat("a", 64)
	f.Add([]byte(a + "  x.squashfs\n" + a + " *y\n"))
	f.Add([]byte("\\" + a + "  x\n"))
	f.Add([]byte(a + "  x\r\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sums, err := ParseSums(data)
		if err != nil {
			return
		}
		// What parses formats back to something that parses the same.
		again, err := ParseSums(FormatSums(sums))
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !maps.Equal(sums, again) {
			t.Fatalf("round trip: %v != %v", sums, again)
		}
	})
}

func TestSignDir(t *testing.T) {
	tr := newTestRoot(t)
	mini := tr.minisignKey(tr.keysDir(), "pub", ext)
	pgp := NewOpenPGPSigner(tr.openpgpKey(tr.keysDir(), "pgp", true, nil, ext))
	kr := tr.keyring()

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, testAsset), []byte("image"))
	writeFile(t, filepath.Join(dir, "release.json"), []byte("{}"))
	writeFile(t, filepath.Join(dir, ".hidden"), []byte("no"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, written, err := SignDir(dir, []Signer{mini, pgp})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(written, " "); got != "SHA256SUMS SHA256SUMS.gpg SHA256SUMS.minisig" {
		t.Errorf("written = %s", got)
	}
	rel := dirRelease(t, dir)
	sums, _ := ParseSums(rel.assets[SumsFile])
	if want := map[string]string{testAsset: sha([]byte("image")), "release.json": sha([]byte("{}"))}; !maps.Equal(sums, want) {
		t.Errorf("SHA256SUMS = %v, want %v", sums, want)
	}
	for _, only := range []string{MinisignFile, OpenPGPFile} {
		r := dirRelease(t, dir)
		for _, other := range []string{MinisignFile, OpenPGPFile} {
			if other != only {
				delete(r.assets, other)
			}
		}
		if _, err := Check(t.Context(), kr, required, ext, r, testAsset, sha([]byte("image"))); err != nil {
			t.Errorf("verify %s written by SignDir: %v", only, err)
		}
	}

	// Signing again with one key drops the other method's stale signature.
	writeFile(t, filepath.Join(dir, "new.squashfs"), []byte("new"))
	if _, _, err := SignDir(dir, []Signer{mini}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, OpenPGPFile)); !os.IsNotExist(err) {
		t.Errorf("stale %s kept: %v", OpenPGPFile, err)
	}
	rel = dirRelease(t, dir)
	if _, err := Check(t.Context(), kr, required, ext, rel, "new.squashfs", sha([]byte("new"))); err != nil {
		t.Error(err)
	}
	if _, _, err := SignDir(t.TempDir(), []Signer{mini}); err == nil || !strings.Contains(err.Error(), "no assets to sign") {
		t.Errorf("empty dir: %v", err)
	}
	if _, _, err := SignDir(dir, []Signer{mini, mini}); err == nil {
		t.Error("two minisign keys: no error")
	}
}

func (tr *testRoot) keysDir() string { return "/etc/sysextd/keys.d" }

// dirRelease is a release read from a directory.
func dirRelease(t *testing.T, dir string) *fakeRelease {
	t.Helper()
	r := &fakeRelease{assets: map[string][]byte{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			r.assets[e.Name()] = b
		}
	}
	return r
}
