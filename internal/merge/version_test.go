package merge

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

func TestSystemdVersionFromSharedLib(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files []string
		want  int
	}{
		{"debian multiarch (forky)", []string{"usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-262.so", "usr/lib/x86_64-linux-gnu/systemd/libsystemd-core-262.so"}, 262},
		{"debian bookworm layout", []string{"usr/lib/systemd/libsystemd-shared-252.so"}, 252},
		{"fedora suffix", []string{"usr/lib64/systemd/libsystemd-shared-256.11-1.fc41.so"}, 256},
		{"mid-upgrade: the highest", []string{"usr/lib/aarch64-linux-gnu/systemd/libsystemd-shared-257.so", "usr/lib/aarch64-linux-gnu/systemd/libsystemd-shared-262.so"}, 262},
		{"core library alone is not it", []string{"usr/lib/systemd/libsystemd-core-262.so"}, 0},
		{"garbage suffix", []string{"usr/lib/systemd/libsystemd-shared-x.so"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(dir, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := SystemdVersion(t.Context(), rootfs.New(dir))
			if tt.want == 0 {
				if !errors.Is(err, ErrNoSystemd) {
					t.Fatalf("SystemdVersion = %d, %v; want ErrNoSystemd", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SystemdVersion = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// TestSystemdVersionHost checks the file name against the host's own
// systemd-sysext --version, when the host has systemd.
func TestSystemdVersionHost(t *testing.T) {
	got, err := SystemdVersion(t.Context(), rootfs.New("/"))
	if errors.Is(err, ErrNoSystemd) {
		t.Skipf("SKIP: no systemd on this host: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := runVersion()
	if err != nil {
		t.Skipf("SKIP: systemd-sysext --version: %v", err)
	}
	want, err := ParseVersionOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("libsystemd-shared says %d, systemd-sysext --version says %d", got, want)
	}
}

func TestParseVersionOutput(t *testing.T) {
	for in, want := range map[string]int{
		"systemd 262 (262-1)\n+PAM +AUDIT\n": 262,
		"systemd 257 (257.9-1~deb13u1)\n":    257,
		"systemd 256 (256.11-1.fc41)":        256,
		"systemd 258~rc1 (258~rc1-2)\n":      258,
		"libsystemd-shared 262\n":            0,
		"":                                   0,
		"systemd (x)\n":                      0,
	} {
		got, err := ParseVersionOutput(in)
		if got != want || (want == 0) != (err != nil) {
			t.Errorf("ParseVersionOutput(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestRestartsUnitsItself(t *testing.T) {
	for v, want := range map[int]bool{0: false, 252: false, 257: false, 261: false, 262: true, 263: true} {
		if got := RestartsUnitsItself(v); got != want {
			t.Errorf("RestartsUnitsItself(%d) = %v, want %v", v, got, want)
		}
	}
	for v, want := range map[int]bool{257: false, 259: false, 260: true, 262: true} {
		if got := RefreshSkipsUnchanged(v); got != want {
			t.Errorf("RefreshSkipsUnchanged(%d) = %v, want %v", v, got, want)
		}
	}
}

// FuzzParseVersionOutput: never panics, and a version read is positive.
func FuzzParseVersionOutput(f *testing.F) {
	f.Add("systemd 262 (262-1)\n")
	f.Add("systemd 99999999999999999999999 (x)")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseVersionOutput(s); err == nil && v <= 0 {
			t.Fatalf("ParseVersionOutput(%q) = %d without error", s, v)
		}
	})
}

func runVersion() (string, error) {
	out, err := exec.Command(DefaultBinary, "--version").Output()
	return string(out), err
}
