package sqfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// listImage returns the paths inside an image as unsquashfs lists them.
func listImage(t *testing.T, img string) []string {
	t.Helper()
	out, err := exec.Command("unsquashfs", "-lc", "-d", "", img).Output()
	if err != nil {
		t.Fatalf("unsquashfs -lc %s: %v", img, err)
	}
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		paths = append(paths, strings.TrimPrefix(l, "/"))
	}
	return paths
}

func catImage(t *testing.T, img, p string) string {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("unsquashfs", "-d", dest, img, p).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs %s %s: %v: %s", img, p, err, out)
	}
	b, err := os.ReadFile(filepath.Join(dest, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		spec     Spec
		file     string
		want     []string
		wantNot  []string
		contains map[string]string
	}{
		{
			name: "defaults",
			spec: Spec{Name: "sysext-hello", Files: map[string]string{"usr/bin/hello": "#!/bin/sh\necho hi\n"}},
			file: "sysext-hello.raw",
			want: []string{"usr/lib/extension-release.d/extension-release.sysext-hello", "usr/bin/hello"},
			contains: map[string]string{
				"usr/lib/extension-release.d/extension-release.sysext-hello": "ID=debian\n",
				"usr/bin/hello": "echo hi",
			},
		},
		{
			name:     "explicit release quoted",
			spec:     Spec{Name: "x", Release: map[string]string{"ID": "_any", "NAME": `a "b" $c`}, Compression: "xz"},
			file:     "x.raw",
			want:     []string{"usr/lib/extension-release.d/extension-release.x"},
			contains: map[string]string{"usr/lib/extension-release.d/extension-release.x": "ID=_any\nNAME=\"a \\\"b\\\" \\$c\"\n"},
		},
		{
			name:    "no release, extra dir",
			spec:    Spec{Name: "y", SkipRelease: true, Dirs: []string{"etc/foo"}, Files: map[string]string{"usr/share/a": "a"}, FileName: "y.squashfs"},
			file:    "y.squashfs",
			want:    []string{"etc/foo", "usr/share/a"},
			wantNot: []string{"usr/lib/extension-release.d/extension-release.y"},
		},
		{
			name: "two release files",
			spec: Spec{Name: "z", ExtraReleaseNames: []string{"other"}, Compression: "zstd"},
			file: "z.raw",
			want: []string{"usr/lib/extension-release.d/extension-release.z", "usr/lib/extension-release.d/extension-release.other"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := Build(t, dir, tc.spec)
			if got, want := img, filepath.Join(dir, tc.file); got != want {
				t.Fatalf("Build returned %q, want %q", got, want)
			}
			paths := listImage(t, img)
			for _, w := range tc.want {
				if !slices.Contains(paths, w) {
					t.Errorf("image lacks %s; has %v", w, paths)
				}
			}
			for _, w := range tc.wantNot {
				if slices.Contains(paths, w) {
					t.Errorf("image has %s, want it absent", w)
				}
			}
			for p, sub := range tc.contains {
				if got := catImage(t, img, p); !strings.Contains(got, sub) {
					t.Errorf("%s = %q, want it to contain %q", p, got, sub)
				}
			}
		})
	}
}

func TestBuildModes(t *testing.T) {
	img := Build(t, t.TempDir(), Spec{Name: "m", Files: map[string]string{"usr/bin/tool": "x", "usr/share/doc": "y"}})
	out, err := exec.Command("unsquashfs", "-lls", "-d", "", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 {
			modes[f[len(f)-1]] = f[0] + " " + f[1]
		}
	}
	for p, want := range map[string]string{"/usr/bin/tool": "-rwxr-xr-x root/root", "/usr/share/doc": "-rw-r--r-- root/root"} {
		if got := modes[p]; got != want {
			t.Errorf("mode of %s = %q, want %q", p, got, want)
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	spec := Spec{Name: "d", Files: map[string]string{"usr/bin/a": "a", "opt/b": "b"}}
	a, err := os.ReadFile(Build(t, t.TempDir(), spec))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(Build(t, t.TempDir(), spec))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of the same spec differ (%d vs %d bytes)", len(a), len(b))
	}
}

func TestBuildFromTreeErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, tree, comp, want string
	}{
		{"missing tree", filepath.Join(dir, "nope"), "", "no such file"},
		{"bad compression", dir, "bogus", "mksquashfs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := BuildFromTree(t.Context(), tc.tree, filepath.Join(t.TempDir(), "o.raw"), tc.comp)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("BuildFromTree error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteTreeRejectsEscapes(t *testing.T) {
	for _, p := range []string{"../evil", "/abs"} {
		if err := WriteTree(t.TempDir(), Spec{SkipRelease: true, Files: map[string]string{p: "x"}}); err == nil {
			t.Errorf("WriteTree accepted path %q", p)
		}
	}
}
