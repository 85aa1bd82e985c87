package shadow

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// base makes a root whose /usr has the given files.
func base(t *testing.T, files ...string) rootfs.Root {
	t.Helper()
	root := rootfs.New(t.TempDir())
	for _, f := range files {
		p := root.Path(f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("base"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	img := sqfs.Build(t, dir, sqfs.Spec{Name: "sysext-tools", Files: map[string]string{
		"usr/bin/vmtoolsd":              "new",
		"usr/bin/hello":                 "new",
		"usr/share/doc/tools/copyright": "c",
		"opt/tools/run":                 "r",
	}})
	other := sqfs.Build(t, dir, sqfs.Spec{Name: "sysext-other", Files: map[string]string{
		"usr/share/doc/tools/copyright": "other",
		"usr/bin/other":                 "o",
	}})
	root := base(t, "/usr/bin/hello", "/usr/share/doc/base/copyright", "/usr/lib/os-release")

	rep, err := Check(t.Context(), root, img, map[string]string{"other": other, "tools": img})
	if err != nil {
		t.Fatal(err)
	}
	wantAdds := []string{"/opt/tools/run", "/usr/bin/hello", "/usr/bin/vmtoolsd", "/usr/share/doc/tools/copyright"}
	if !slices.Equal(rep.Adds, wantAdds) {
		t.Errorf("Adds = %q, want %q (files only, no extension-release)", rep.Adds, wantAdds)
	}
	if !slices.Equal(rep.Shadows, []string{"/usr/bin/hello"}) {
		t.Errorf("Shadows = %q, want /usr/bin/hello only (directories the base has are merged, not shadowed)", rep.Shadows)
	}
	if len(rep.Overlaps) != 1 || rep.Overlaps[0] != (Overlap{Path: "/usr/share/doc/tools/copyright", With: "other", Wins: "sysext-tools"}) {
		t.Errorf("Overlaps = %+v, want the copyright file with other (and never the image with itself)", rep.Overlaps)
	}
	if s := rep.Summary(); !strings.Contains(s, "shadows 1 file(s) of the base tree (/usr/bin/hello)") || !strings.Contains(s, "copyright with other") {
		t.Errorf("Summary = %q", s)
	}
	if err := rep.Refuse("tools"); err == nil || !strings.Contains(err.Error(), "allow_shadow = false") {
		t.Errorf("Refuse = %v", err)
	}

	clean, err := Check(t.Context(), base(t), other, nil)
	if err != nil || clean.Shadowing() || clean.Summary() != "" || clean.Refuse("other") != nil || len(clean.Adds) != 2 {
		t.Errorf("image hiding nothing: %+v, %v", clean, err)
	}
}

// Once /usr is merged, a file an installed extension ships is visible in
// /usr: it is an overlap, not a claim about the base.
func TestCheckMergedBase(t *testing.T) {
	dir := t.TempDir()
	img := sqfs.Build(t, dir, sqfs.Spec{Name: "sysext-a", Files: map[string]string{"usr/bin/x": "a", "usr/bin/hello": "a"}})
	other := sqfs.Build(t, dir, sqfs.Spec{Name: "sysext-b", Files: map[string]string{"usr/bin/x": "b"}})
	root := base(t, "/usr/bin/x", "/usr/bin/hello", "/usr/.systemd-sysext/extensions")
	rep, err := Check(t.Context(), root, img, map[string]string{"b": other})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.BaseUnknown || !slices.Equal(rep.Shadows, []string{"/usr/bin/hello"}) || len(rep.Overlaps) != 1 {
		t.Errorf("merged base: %+v; want /usr/bin/x as an overlap with b only, /usr/bin/hello shadowed", rep)
	}
}

// An update while the old version is merged: the old version's files are
// in /usr, and neither shadow the base nor overlap another extension.
func TestCheckUpdateOfMerged(t *testing.T) {
	old := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "sysext-a", Files: map[string]string{"usr/bin/x": "1", "usr/bin/gone": "1"}})
	img := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "sysext-a", Files: map[string]string{"usr/bin/x": "2", "usr/bin/new": "2"}})
	root := base(t, "/usr/bin/x", "/usr/bin/gone", "/usr/.systemd-sysext/extensions")
	rep, err := Check(t.Context(), root, img, map[string]string{"a": old})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Shadowing() || !rep.BaseUnknown {
		t.Errorf("update of a merged extension: %+v; want nothing hidden", rep)
	}
	// Not merged: /usr/bin/x is really the base's.
	os.RemoveAll(root.Path("/usr/.systemd-sysext"))
	rep, err = Check(t.Context(), root, img, map[string]string{"a": old})
	if err != nil || len(rep.Shadows) != 1 || rep.Shadows[0] != "/usr/bin/x" || len(rep.Overlaps) != 0 {
		t.Errorf("update, not merged: %+v, %v; want /usr/bin/x shadowed, no overlap with itself", rep, err)
	}
}

func TestListErrors(t *testing.T) {
	dir := t.TempDir()
	notSqfs := filepath.Join(dir, "x.raw")
	os.WriteFile(notSqfs, []byte("not an image at all"), 0o644)
	if _, err := List(t.Context(), notSqfs); err == nil || !strings.Contains(err.Error(), "not a squashfs image") {
		t.Errorf("List(garbage) = %v", err)
	}
	if _, err := List(t.Context(), dir); err == nil {
		t.Error("List(directory) succeeded")
	}
	truncated := filepath.Join(dir, "t.raw")
	img := sqfs.Build(t, dir, sqfs.Spec{Name: "sysext-a", Files: map[string]string{"usr/bin/x": "a"}})
	data, _ := os.ReadFile(img)
	os.WriteFile(truncated, data[:200], 0o644) // past the superblock, short of the tables
	if _, err := List(t.Context(), truncated); err == nil {
		t.Error("List(truncated image) succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := List(ctx, img); !errors.Is(err, context.Canceled) {
		t.Errorf("List(cancelled ctx) = %v, want context.Canceled", err)
	}
	if _, err := Check(t.Context(), base(t), img, map[string]string{"broken": notSqfs}); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("Check with a broken installed image = %v, want an error naming it", err)
	}
}

func FuzzList(f *testing.F) {
	if img, err := os.ReadFile("testdata/small.raw"); err == nil {
		f.Add(img)
	}
	f.Add([]byte("hsqs"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.raw")
		os.WriteFile(p, data, 0o644)
		done := make(chan struct{})
		go func() {
			defer close(done)
			List(t.Context(), p) // must not panic
		}()
		select {
		case <-done:
		case <-time.After(ListTimeout + 5*time.Second):
			t.Fatalf("List hangs past its own bound on %d bytes", len(data))
		}
	})
}

func TestInstalled(t *testing.T) {
	root := rootfs.New(t.TempDir())
	s := store.Store{Root: root}
	os.MkdirAll(root.Path(rootfs.ExtensionsDir), 0o755)
	os.WriteFile(s.ImagePath("sysext-a"), []byte("image"), 0o644)
	if err := s.SaveState(&store.State{Extensions: map[string]*store.Record{
		"a": {Name: "a", Image: "sysext-a"}, "gone": {Name: "gone", Image: "sysext-gone"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := Installed(s)
	if err != nil || len(got) != 1 || got["a"] != s.ImagePath("sysext-a") {
		t.Errorf("Installed = %v, %v; want only a (gone's image is missing)", got, err)
	}
}
