package rootfs

import "testing"

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
