package payload

import (
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/image/imagetest"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// build makes a squashfs image carrying files (path -> content; a value
// starting with "->" is a symlink target).
func build(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	fs := []imagetest.File{{Path: "usr/lib/extension-release.d/extension-release." + name, Data: "ID=debian\nVERSION_ID=13\n"}}
	for p, c := range files {
		if target, ok := strings.CutPrefix(c, "->"); ok {
			fs = append(fs, imagetest.File{Path: p, Link: target})
		} else {
			fs = append(fs, imagetest.File{Path: p, Data: c})
		}
	}
	out := filepath.Join(t.TempDir(), name+".raw")
	if err := imagetest.Build(t.Context(), out, "", "", fs); err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshot returns every file, symlink and directory under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			m[r] = "->" + l
		case fi.IsDir():
			m[r] = "dir " + fi.Mode().Perm().String()
		default:
			b, _ := os.ReadFile(p)
			m[r] = fi.Mode().Perm().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equalSnap(t *testing.T, got, want map[string]string, when string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", when, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s (%q)", when, k, v)
		}
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newRoot(t *testing.T) (string, rootfs.Root) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "etc/hostname"), "appliance\n")
	return dir, rootfs.New(dir)
}

func TestInstallFreshAndUndo(t *testing.T) {
	dir, root := newRoot(t)
	before := snapshot(t, dir)
	img := build(t, "vgauth", map[string]string{
		"etc/vmware-tools/vgauth.conf":          "[service]\nsamlSchemaDir = /etc/vmware-tools/vgauth/schemas\n",
		"etc/vmware-tools/vgauth/schemas/a.xsd": "<xsd/>",
		"etc/vmware-tools/tools.conf.example":   "x",
		"etc/vmware-tools/link":                 "->vgauth.conf",
		"var/lib/vmware/state":                  "s",
		"usr/bin/vmtoolsd":                      "bin",
	})
	recs, ch, err := Install(t.Context(), root, img, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("records = %+v, want 5 (4 under etc, 1 under var)", recs)
	}
	for _, r := range recs {
		if !r.Installed || len(r.SHA256) != 64 {
			t.Errorf("record %+v: want Installed with a sha256", r)
		}
	}
	got := snapshot(t, dir)
	if got["etc/vmware-tools/vgauth/schemas/a.xsd"] != "-rw-r--r-- <xsd/>" || got["etc/vmware-tools/link"] != "->vgauth.conf" ||
		got["var/lib/vmware/state"] != "-rw-r--r-- s" {
		t.Errorf("after install: %q", got)
	}
	if _, ok := got["usr"]; ok {
		t.Errorf("usr/ was copied: payload is etc/ and var/ only")
	}
	if err := ch.Undo(); err != nil {
		t.Fatal(err)
	}
	equalSnap(t, snapshot(t, dir), before, "after undo")
}

func TestAdminFilesNeverTouched(t *testing.T) {
	dir, root := newRoot(t)
	write(t, filepath.Join(dir, "etc/app/app.conf"), "admin's own\n")
	img := build(t, "app", map[string]string{"etc/app/app.conf": "shipped\n", "etc/app/other.conf": "o\n"})
	recs, _, err := Install(t.Context(), root, img, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/app/app.conf")); string(b) != "admin's own\n" {
		t.Errorf("admin's file overwritten: %q", b)
	}
	for _, r := range recs {
		if r.Path == "/etc/app/app.conf" && r.Installed {
			t.Errorf("admin's file recorded as ours: %+v", r)
		}
	}
	// Remove leaves the admin's file, deletes ours.
	if _, err := Remove(t.Context(), root, recs, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/app/other.conf")); !os.IsNotExist(err) {
		t.Errorf("our unmodified file survived remove: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/app/app.conf")); string(b) != "admin's own\n" {
		t.Errorf("remove touched the admin's file: %q", b)
	}
}

func TestUpdateKeepsLocalEditAndUndoRestores(t *testing.T) {
	dir, root := newRoot(t)
	v1 := build(t, "app", map[string]string{"etc/app/a.conf": "a1\n", "etc/app/b.conf": "b1\n", "etc/app/old.conf": "old\n", "etc/app/edited-old.conf": "eo\n"})
	recs1, _, err := Install(t.Context(), root, v1, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "etc/app/a.conf"), "a1 with a local edit\n")
	write(t, filepath.Join(dir, "etc/app/edited-old.conf"), "edited\n")
	before := snapshot(t, dir)

	v2 := build(t, "app", map[string]string{"etc/app/a.conf": "a2\n", "etc/app/b.conf": "b2\n", "etc/app/new.conf": "n\n"})
	recs2, ch, err := Install(t.Context(), root, v2, recs1, "")
	if err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dir)
	want := map[string]string{
		"etc/app/a.conf":          "-rw-r--r-- a1 with a local edit\n", // the admin's edit survives
		"etc/app/b.conf":          "-rw-r--r-- b2\n",                   // unmodified: replaced
		"etc/app/new.conf":        "-rw-r--r-- n\n",                    // new: installed
		"etc/app/edited-old.conf": "-rw-r--r-- edited\n",               // dropped by v2 but edited: kept
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("after update: %s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["etc/app/old.conf"]; ok {
		t.Errorf("old.conf, dropped by v2 and unmodified, survived the update")
	}
	for _, r := range recs2 {
		if r.Path == "/etc/app/a.conf" && (!r.Installed || r.SHA256 != recs1[0].SHA256) {
			t.Errorf("a.conf record %+v: want ours with v1's hash kept (the edit is not ours)", r)
		}
	}
	if err := ch.Undo(); err != nil {
		t.Fatal(err)
	}
	equalSnap(t, snapshot(t, dir), before, "after undo of the update")
}

func TestRemoveAndUndo(t *testing.T) {
	dir, root := newRoot(t)
	img := build(t, "app", map[string]string{"etc/app/sub/a.conf": "a\n", "etc/app/b.conf": "b\n"})
	recs, _, err := Install(t.Context(), root, img, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "etc/app/b.conf"), "edited\n")
	before := snapshot(t, dir)
	ch, err := Remove(t.Context(), root, recs, "")
	if err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dir)
	if _, ok := got["etc/app/sub"]; ok {
		t.Errorf("empty etc/app/sub left behind: %q", got)
	}
	if got["etc/app/b.conf"] != "-rw-r--r-- edited\n" {
		t.Errorf("edited b.conf = %q, want it kept", got["etc/app/b.conf"])
	}
	for k := range got {
		if strings.HasSuffix(k, "a.conf") {
			t.Errorf("unmodified %s left behind", k)
		}
	}
	if err := ch.Undo(); err != nil {
		t.Fatal(err)
	}
	equalSnap(t, snapshot(t, dir), before, "after undo of remove")
}

// A symlink on the host must never lead a write outside the root.
func TestNoWriteThroughSymlinkOutOfRoot(t *testing.T) {
	dir, root := newRoot(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "etc/app")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	img := build(t, "app", map[string]string{"etc/app/a.conf": "a\n"})
	_, _, err := Install(t.Context(), root, img, nil, "")
	if err == nil {
		t.Fatal("Install through a symlink out of the root succeeded")
	}
	t.Logf("refused: %v", err)
	if es, _ := os.ReadDir(outside); len(es) != 0 {
		t.Errorf("wrote outside the root: %v", es)
	}
	equalSnap(t, snapshot(t, dir), before, "after the refused install")
}

func TestNoPayload(t *testing.T) {
	_, root := newRoot(t)
	img := build(t, "bare", map[string]string{"usr/bin/x": "x"})
	recs, ch, err := Install(t.Context(), root, img, nil, "")
	if err != nil || len(recs) != 0 {
		t.Fatalf("Install = %v, %v; want no records", recs, err)
	}
	if err := ch.Undo(); err != nil {
		t.Fatal(err)
	}
}

// errKilled is what killHook panics with.
type errKilled struct{}

// TestRecoverAfterKillAtEveryStep: a payload step killed at any instant
// (before an undo step reaches the journal, or after it did but before its
// change) is put back exactly by Recover from the journal alone, for a
// fresh install, an update over a local edit, and a removal; a second
// Recover changes nothing; a torn last line is ignored.
func TestRecoverAfterKillAtEveryStep(t *testing.T) {
	v1files := map[string]string{"etc/app/a.conf": "a1\n", "etc/app/b.conf": "b1\n", "etc/app/old.conf": "old\n", "etc/app/sub/deep.conf": "d\n", "etc/app/link": "->a.conf"}
	v2files := map[string]string{"etc/app/a.conf": "a2\n", "etc/app/b.conf": "b2\n", "etc/app/new/n.conf": "n\n", "var/lib/app/state": "s"}
	v1, v2 := build(t, "app", v1files), build(t, "app", v2files)
	type op struct {
		name string
		prep func(t *testing.T, dir string, root rootfs.Root) []File // brings the host to the "before" state
		run  func(root rootfs.Root, prev []File, journal string) error
	}
	install := func(img string) func(rootfs.Root, []File, string) error {
		return func(root rootfs.Root, prev []File, journal string) error {
			_, _, err := Install(t.Context(), root, img, prev, journal)
			return err
		}
	}
	withV1 := func(t *testing.T, dir string, root rootfs.Root) []File {
		recs, ch, err := Install(t.Context(), root, v1, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		ch.Commit()
		write(t, filepath.Join(dir, "etc/app/a.conf"), "a1 with a local edit\n")
		return recs
	}
	ops := []op{
		{"fresh install", func(*testing.T, string, rootfs.Root) []File { return nil }, install(v2)},
		{"update over a local edit", withV1, install(v2)},
		{"remove", withV1, func(root rootfs.Root, prev []File, journal string) error {
			_, err := Remove(t.Context(), root, prev, journal)
			return err
		}},
	}
	held, tried := 0, 0
	for _, o := range ops {
		for k := 0; ; k++ {
			stopped := false
			for _, written := range []bool{false, true} {
				dir, root := newRoot(t)
				prev := o.prep(t, dir, root)
				before := snapshot(t, dir)
				journal := filepath.Join(t.TempDir(), "payload-undo.jsonl")
				killHook = func(n int, w bool) {
					if n == k && w == written {
						panic(errKilled{})
					}
				}
				killed := func() (killed bool) {
					defer func() {
						if r := recover(); r != nil {
							if _, ok := r.(errKilled); !ok {
								panic(r)
							}
							killed = true
						}
					}()
					if err := o.run(root, prev, journal); err != nil {
						t.Fatalf("%s: %v", o.name, err)
					}
					return false
				}()
				killHook = nil
				if !killed {
					stopped = true // k is past the last step: the run completed
					break
				}
				tried++
				if written { // a kill while writing the next line tears it
					f, err := os.OpenFile(journal, os.O_APPEND|os.O_WRONLY, 0)
					if err != nil {
						t.Fatal(err)
					}
					f.WriteString(`{"op":"remove","path":"etc/ha`)
					f.Close()
				}
				for i := range 2 { // idempotent
					if err := Recover(root, journal); err != nil {
						t.Fatalf("%s, killed at step %d (written %v): Recover #%d: %v", o.name, k, written, i+1, err)
					}
				}
				if _, err := os.Stat(journal); !os.IsNotExist(err) {
					t.Errorf("%s, killed at step %d: the journal survived Recover (%v)", o.name, k, err)
				}
				if got := snapshot(t, dir); maps.Equal(got, before) {
					held++
				} else {
					equalSnap(t, got, before, o.name+" killed at step "+strconv.Itoa(k)+" written="+strconv.FormatBool(written))
				}
			}
			if stopped {
				if k < 3 {
					t.Errorf("%s: only %d steps journaled, want a real sweep", o.name, k)
				}
				break
			}
		}
	}
	t.Logf("%d kills tried, %d held", tried, held)
}
