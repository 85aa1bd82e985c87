package rootfs

import (
	"os"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	tests := []struct {
		name, dir, in, want string
	}{
		{"host", "", "/var/lib/extensions", "/var/lib/extensions"},
		{"host slash", "/", "var/lib", "/var/lib"},
		{"under root", "/tmp/r", "/var/lib/extensions", "/tmp/r/var/lib/extensions"},
		{"relative", "/tmp/r/", "etc/os-release", "/tmp/r/etc/os-release"},
		{"no escape", "/tmp/r", "/../../etc/passwd", "/tmp/r/etc/passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.dir).Path(tt.in); got != tt.want {
				t.Errorf("Path(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRel(t *testing.T) {
	r := New("/tmp/r")
	if got := r.Rel("/tmp/r/var/lib/x.raw"); got != "/var/lib/x.raw" {
		t.Errorf("Rel = %q", got)
	}
	if got := New("").Rel("/a/b"); got != "/a/b" {
		t.Errorf("host Rel = %q", got)
	}
}

func TestHostSpellings(t *testing.T) {
	for _, dir := range []string{"", "/", "//", "/./", "/tmp/..", "/usr/../"} {
		if !New(dir).IsHost() {
			t.Errorf("New(%q) is not the host: D-Bus and units would be switched off on the real host", dir)
		}
	}
	if New("/tmp/x/").Dir() != "/tmp/x" {
		t.Errorf("New(/tmp/x/).Dir() = %q", New("/tmp/x/").Dir())
	}
}

// Contain refuses a directory whose path leads out of the root through a
// symlink (R/var/cache linked elsewhere), and accepts one inside it or not
// there yet; WriteFile never writes through such a link.
func TestContainAndRootedWrites(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	r := New(dir)
	os.MkdirAll(r.Path("/var"), 0o755)
	if err := os.Symlink(outside, r.Path("/var/cache")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Contain("/var/cache/sysextd"); err == nil || !strings.Contains(err.Error(), "outside the root") {
		t.Errorf("Contain through a link out of the root = %v", err)
	}
	if p, err := r.Contain("/var/lib/sysextd/new"); err != nil || p != r.Path("/var/lib/sysextd/new") {
		t.Errorf("Contain of a path not there yet = %q, %v", p, err)
	}
	os.Symlink(".", r.Path("/var/inside"))
	if _, err := r.Contain("/var/inside/x"); err != nil {
		t.Errorf("Contain through a link inside the root: %v", err)
	}
	if err := r.WriteFile("/var/cache/sysextd/x.json", []byte("x"), 0o644); err == nil {
		t.Error("WriteFile wrote through a link out of the root")
	}
	if err := r.AppendLine("/var/cache/pkgs", "x", 0o644); err == nil {
		t.Error("AppendLine wrote through a link out of the root")
	}
	if es, _ := os.ReadDir(outside); len(es) != 0 {
		t.Errorf("written outside the root: %v", es)
	}
	if err := r.WriteFile("/run/reboot-required", []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(r.Path("/run/reboot-required")); string(b) != "x\n" {
		t.Errorf("content %q", b)
	}
}
