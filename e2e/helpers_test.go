//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestMergedUsr(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"usr path", "/usr/bin/hello", "usr/bin/hello"},
		{"bin alias", "/bin/ip", "usr/bin/ip"},
		{"lib alias", "/lib/systemd/system/x.service", "usr/lib/systemd/system/x.service"},
		{"lib64 alias", "/lib64/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2"},
		{"etc stays", "/etc/vmware-tools/tools.conf", "etc/vmware-tools/tools.conf"},
		{"libexec is not an alias", "/libexecfoo/x", "libexecfoo/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mergedUsr(tt.in); got != tt.want {
				t.Errorf("mergedUsr(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestReleaseFields(t *testing.T) {
	when := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		opts ExtOptions
		want map[string]string // subset of fields that must hold; "" = absent
	}{
		{"defaults", ExtOptions{BuildTime: when}, map[string]string{
			"ID": "debian", "VERSION_ID": "13", "ARCHITECTURE": "x86-64", "ARCH": "amd64",
			"NAME": "sysext-hello", "PACKAGE": "hello", "PACKAGE_VERSION": "2.10-5",
			"BUILD_TIME": "2026-11-01T09:00:00Z", "REPOSITORY": "https://github.com/SpamTagger/sysext-hello",
			"UPDATE": "",
		}},
		{"update and repository", ExtOptions{Update: "reboot", Repository: "https://example.test/r"}, map[string]string{
			"UPDATE": "reboot", "REPOSITORY": "https://example.test/r",
		}},
		{"override, add and remove", ExtOptions{Release: map[string]string{"VERSION_ID": "12", "SYSEXT_LEVEL": "1", "ARCH": ""}}, map[string]string{
			"VERSION_ID": "12", "SYSEXT_LEVEL": "1", "ARCH": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Built{Release: releaseFields("sysext-hello", "hello", "2.10-5", tt.opts)}
			for k, want := range tt.want {
				if got := b.Get(k); got != want {
					t.Errorf("%s = %q, want %q\n%s", k, got, want, b.ReleaseFile())
				}
			}
		})
	}
}

func TestHostMirror(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"one-line", map[string]string{"sources.list": "# x\ndeb http://mirror.test/debian/ trixie main\n"}, "http://mirror.test/debian"},
		{"deb822", map[string]string{"sources.list.d/debian.sources": "Types: deb\nURIs: http://deb.test/debian\nSuites: trixie\n"}, "http://deb.test/debian"},
		{"only others", map[string]string{"sources.list.d/x.list": "deb https://packages.test/apt stable main\n"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, content := range tt.files {
				dst := filepath.Join(dir, p)
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dst, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := hostMirror(dir); got != tt.want {
				t.Errorf("hostMirror = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDpkgVersions(t *testing.T) {
	status := "Package: hello\nStatus: install ok installed\nVersion: 2.10-5\nDescription: x\n continued: line\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n" +
		"Package: open-vm-tools\nStatus: install ok installed\nVersion: 2:12.5.0-2+deb13u1\n"
	path := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(path, []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	got := dpkgVersions(t, path)
	want := map[string]string{"hello": "2.10-5", "open-vm-tools": "2:12.5.0-2+deb13u1"}
	if len(got) != len(want) {
		t.Fatalf("dpkgVersions = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if keys := slices.Sorted(func(yield func(string) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(keys, []string{"hello", "open-vm-tools"}) {
		t.Errorf("packages = %v", keys)
	}
}

func TestReadBaseNeedsStampAndRoot(t *testing.T) {
	stamp := `{"suite":"trixie","mirror":"http://deb.test/debian"}`
	tests := []struct {
		name      string
		stamp     bool
		systemd   bool
		wantError bool
	}{
		{"complete", true, true, false},
		{"debootstrap interrupted: no stamp", false, true, true},
		{"stamp without root", true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root, stampPath := filepath.Join(dir, "rootfs"), filepath.Join(dir, "stamp.json")
			if tt.systemd {
				bin := filepath.Join(root, "usr/lib/systemd/systemd")
				if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(bin, nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tt.stamp {
				if err := os.WriteFile(stampPath, []byte(stamp), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := readBase(root, stampPath, Trixie)
			if gotErr := err != nil; gotErr != tt.wantError {
				t.Fatalf("readBase error = %v, want error %v", err, tt.wantError)
			}
			if err == nil && (b.Dir != root || b.Key == "" || b.Stamp.Mirror != "http://deb.test/debian") {
				t.Errorf("readBase = %+v", b)
			}
		})
	}
}
