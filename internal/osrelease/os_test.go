package osrelease

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// ReadOS finds a tree's os-release the way systemd does: /etc first, then
// /usr/lib only when /etc has none; symlinks, absolute ones too, resolve
// inside the tree.
func TestReadOS(t *testing.T) {
	const etc, usr = "ID=etc\nVERSION_ID=1\n", "ID=usr\nID_LIKE=debian\nVERSION_ID=2\nVERSION_CODENAME=two\nSYSEXT_LEVEL=2\n"
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string)
		wantID   string
		wantPath string
		wantErr  error
	}{
		{"etc wins", func(t *testing.T, d string) {
			write(t, d, "etc/os-release", etc)
			write(t, d, "usr/lib/os-release", usr)
		}, "etc", "/etc/os-release", nil},
		{"usr/lib when etc has none", func(t *testing.T, d string) { write(t, d, "usr/lib/os-release", usr) }, "usr", "/usr/lib/os-release", nil},
		{"relative symlink", func(t *testing.T, d string) {
			write(t, d, "usr/lib/os-release", usr)
			link(t, d, "../usr/lib/os-release", "etc/os-release")
		}, "usr", "/etc/os-release", nil},
		{"absolute symlink resolves inside the tree", func(t *testing.T, d string) {
			write(t, d, "usr/lib/os-release", usr)
			link(t, d, "/usr/lib/os-release", "etc/os-release")
		}, "usr", "/etc/os-release", nil},
		{"dangling etc symlink falls through", func(t *testing.T, d string) {
			write(t, d, "usr/lib/os-release", usr)
			link(t, d, "/nowhere", "etc/os-release")
		}, "usr", "/usr/lib/os-release", nil},
		{"neither", func(t *testing.T, d string) {}, "", "", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			r, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, path, err := ReadOS(r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.ID != tt.wantID || path != tt.wantPath {
				t.Errorf("got %+v from %q, want ID %q from %q", got, path, tt.wantID, tt.wantPath)
			}
			if tt.wantID == "usr" && got != (OS{ID: "usr", IDLike: "debian", VersionID: "2", VersionCodename: "two", SysextLevel: "2"}) {
				t.Errorf("fields = %+v", got)
			}
		})
	}
}

// Only a missing file falls through to /usr/lib: any other error is the
// answer, as in systemd (an /etc/os-release that is a directory).
func TestReadOSOtherErrorStops(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "usr/lib/os-release", "ID=usr\n")
	if err := os.MkdirAll(filepath.Join(dir, "etc/os-release"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _, err := ReadOS(r); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %+v, %v; want the error reading /etc/os-release", got, err)
	}
}

func write(t *testing.T, dir, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, dir, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, p)); err != nil {
		t.Fatal(err)
	}
}
