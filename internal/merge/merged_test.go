package merge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"golang.org/x/sys/unix"
)

// writeMeta lays out the metadata systemd-sysext leaves in a merged
// hierarchy. dev "" means the hierarchy's real device, as in a live merge.
func writeMeta(t *testing.T, root rootfs.Root, hierarchy, dev string, names ...string) {
	t.Helper()
	h := root.Path(hierarchy)
	if err := os.MkdirAll(filepath.Join(h, metaDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if dev == "" {
		var st unix.Stat_t
		if err := unix.Stat(h, &st); err != nil {
			t.Fatal(err)
		}
		dev = fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	files := map[string]string{"dev": dev + "\n", "extensions": strings.Join(names, "\n") + "\n"}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(h, metaDir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMergedFromMetadata(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, r rootfs.Root)
		want    []string
		wantErr bool
	}{
		{"no usr at all", func(t *testing.T, r rootfs.Root) {}, []string{}, false},
		{"plain usr", func(t *testing.T, r rootfs.Root) { mkdir(t, r.Path("/usr/bin")) }, []string{}, false},
		{"live merge", func(t *testing.T, r rootfs.Root) { writeMeta(t, r, "/usr", "", "foo", "bar") }, []string{"bar", "foo"}, false},
		{"usr and opt, deduplicated", func(t *testing.T, r rootfs.Root) {
			writeMeta(t, r, "/usr", "", "foo", "bar")
			writeMeta(t, r, "/opt", "", "baz", "foo")
		}, []string{"bar", "baz", "foo"}, false},
		{"copied tree with another device", func(t *testing.T, r rootfs.Root) { writeMeta(t, r, "/usr", "4095:1048575", "foo") }, []string{}, false},
		{"blank lines ignored", func(t *testing.T, r rootfs.Root) { writeMeta(t, r, "/usr", "", "", "foo", "") }, []string{"foo"}, false},
		{"garbage dev file", func(t *testing.T, r rootfs.Root) { writeMeta(t, r, "/usr", "nonsense", "foo") }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := rootfs.New(t.TempDir())
			tt.setup(t, root)
			got, err := (&Sysext{Root: root}).Merged(t.Context())
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("Merged() error = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !slices.Equal(got, tt.want) {
				t.Errorf("Merged() = %q, want %q", got, tt.want)
			}
		})
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		name string
		s    Sysext
		want []string
	}{
		{"host", Sysext{}, []string{"systemd-sysext", "refresh"}},
		{"slash is the host", Sysext{Root: rootfs.New("/")}, []string{"systemd-sysext", "refresh"}},
		{"root", Sysext{Root: rootfs.New("/tmp/r/")}, []string{"systemd-sysext", "--root=/tmp/r", "refresh"}},
		{"binary", Sysext{Binary: "/opt/sd/systemd-sysext"}, []string{"/opt/sd/systemd-sysext", "refresh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.argv("refresh"); !slices.Equal(got, tt.want) {
				t.Errorf("argv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCommandErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  CommandError
		want []string
	}{
		{"exit code", CommandError{Argv: []string{"systemd-sysext", "--root=/r", "refresh"}, ExitCode: 1, Stderr: "Failed to read metadata for image x: Package not installed\n"},
			[]string{"systemd-sysext --root=/r refresh", "exit code 1", "Failed to read metadata for image x"}},
		{"exit 0 with errors", CommandError{Argv: []string{"systemd-sysext", "refresh"}, Stderr: "Failed to acquire 'os-release' data"},
			[]string{"systemd-sysext refresh", "exited 0", "os-release"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Error() = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func TestRunMissingBinary(t *testing.T) {
	s := &Sysext{Root: rootfs.New(t.TempDir()), Binary: filepath.Join(t.TempDir(), "no-such-sysext")}
	err := s.Refresh(t.Context())
	if err == nil {
		t.Fatal("Refresh with a missing binary succeeded")
	}
	var cerr *CommandError
	if errors.As(err, &cerr) {
		t.Errorf("missing binary gave %T, want a plain start error", err)
	}
	if !strings.Contains(err.Error(), "no-such-sysext") {
		t.Errorf("error %q does not name the binary", err)
	}
}
