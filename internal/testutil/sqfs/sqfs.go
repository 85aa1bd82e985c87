// Package sqfs builds real squashfs system-extension images with mksquashfs,
// for tests (Build) and for the end-to-end harness and demo (BuildFromTree).
//
// Images are built reproducibly: every file is owned by root and carries a
// fixed timestamp, so the same Spec gives the same bytes.
package sqfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// ReleaseDir is where an image carries its extension-release file.
const ReleaseDir = "usr/lib/extension-release.d"

// Spec describes an extension image to build.
type Spec struct {
	// Name is the extension name: the image carries
	// usr/lib/extension-release.d/extension-release.<Name>.
	Name string
	// Release holds the KEY=VALUE lines of the extension-release file,
	// written sorted by key. nil means DefaultRelease(Name).
	Release map[string]string
	// Files are extra files, path inside the image ("usr/bin/hello") to
	// content. Mode 0755 under usr/bin and usr/sbin, 0644 otherwise.
	Files map[string]string
	// Dirs are extra directories, e.g. "etc" to make an invalid image.
	Dirs []string
	// Symlinks are symbolic links, path inside the image to target.
	Symlinks map[string]string
	// SkipRelease builds the image without any extension-release file.
	SkipRelease bool
	// ExtraReleaseNames adds extension-release.<X> files with the same
	// content (an invalid image: more than one release file).
	ExtraReleaseNames []string
	// Compression is "" for mksquashfs's default (gzip), or "xz", "zstd",
	// "lz4", "lzo", "lzma".
	Compression string
	// FileName is the image's file name in dir; "" means Name + ".raw"
	// ("image.raw" when Name is empty).
	FileName string
}

// DefaultRelease returns the extension-release fields the sysext template
// writes, for an image built on Debian trixie for the running architecture.
// Callers may modify the returned map and pass it as Spec.Release.
func DefaultRelease(name string) map[string]string {
	deb, sd := HostArch()
	pkg := strings.TrimPrefix(name, "sysext-")
	return map[string]string{
		"ID":               "debian",
		"VERSION_ID":       "13",
		"VERSION_CODENAME": "trixie",
		"NAME":             name,
		"PACKAGE":          pkg,
		"PACKAGE_VERSION":  "1.0-1",
		"ARCH":             deb,
		"ARCHITECTURE":     sd,
		"BUILD_TIME":       "2026-11-01T09:00:00Z",
		"REPOSITORY":       "https://github.com/SpamTagger/" + name,
	}
}

// HostArch returns the running architecture in Debian and systemd names.
func HostArch() (deb, systemd string) {
	switch runtime.GOARCH {
	case "amd64":
		return "amd64", "x86-64"
	case "arm64":
		return "arm64", "arm64"
	case "arm":
		return "armhf", "arm"
	case "386":
		return "i386", "x86"
	case "ppc64le":
		return "ppc64el", "ppc64-le"
	case "riscv64":
		return "riscv64", "riscv64"
	case "s390x":
		return "s390x", "s390x"
	}
	return runtime.GOARCH, runtime.GOARCH
}

// FormatRelease renders fields as extension-release lines sorted by key,
// double-quoting values that are not plain words.
func FormatRelease(fields map[string]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, quote(fields[k]))
	}
	return b.String()
}

func quote(v string) string {
	plain := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+:/~@", r)) {
			plain = false
			break
		}
	}
	if plain {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return `"` + r.Replace(v) + `"`
}

// Build writes the image described by s into dir and returns its path. It
// fails the test when the image cannot be built. When mksquashfs is not
// installed the test is skipped, except under CI (CI=true), where it fails.
func Build(t testing.TB, dir string, s Spec) string {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mksquashfs is required under CI (install squashfs-tools): %v", err)
		}
		t.Skipf("SKIPPING: mksquashfs not found (install squashfs-tools): %v", err)
	}
	tree := t.TempDir()
	if err := WriteTree(tree, s); err != nil {
		t.Fatalf("writing image tree: %v", err)
	}
	name := s.FileName
	if name == "" {
		name = s.Name + ".raw"
		if s.Name == "" {
			name = "image.raw"
		}
	}
	out := filepath.Join(dir, name)
	if err := BuildFromTree(t.Context(), tree, out, s.Compression); err != nil {
		t.Fatalf("building image %s: %v", out, err)
	}
	return out
}

// WriteTree lays out the files of s under the directory tree (which must
// exist), as Build would put them into the image.
func WriteTree(tree string, s Spec) error {
	if !s.SkipRelease {
		fields := s.Release
		if fields == nil {
			fields = DefaultRelease(s.Name)
		}
		content := FormatRelease(fields)
		for _, n := range append([]string{s.Name}, s.ExtraReleaseNames...) {
			p := filepath.Join(ReleaseDir, "extension-release."+n)
			if err := writeFile(tree, p, content); err != nil {
				return err
			}
		}
	}
	for p, content := range s.Files {
		if err := writeFile(tree, p, content); err != nil {
			return err
		}
	}
	for _, d := range s.Dirs {
		if err := os.MkdirAll(filepath.Join(tree, filepath.FromSlash(d)), 0o755); err != nil {
			return fmt.Errorf("creating dir %s: %w", d, err)
		}
	}
	for p, target := range s.Symlinks {
		full := filepath.Join(tree, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("creating dir for %s: %w", p, err)
		}
		if err := os.Symlink(target, full); err != nil {
			return fmt.Errorf("creating symlink %s: %w", p, err)
		}
	}
	return nil
}

func writeFile(tree, p, content string) error {
	clean := filepath.Clean(filepath.FromSlash(p))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("writing %s: path must be relative and inside the image", p)
	}
	full := filepath.Join(tree, clean)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	mode := os.FileMode(0o644)
	if strings.HasPrefix(clean, filepath.Join("usr", "bin")+string(filepath.Separator)) ||
		strings.HasPrefix(clean, filepath.Join("usr", "sbin")+string(filepath.Separator)) {
		mode = 0o755
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	// WriteFile honours the umask; set the mode exactly.
	if err := os.Chmod(full, mode); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// BuildFromTree packs the directory tree into the squashfs image out
// (replacing it), with every file owned by root and fixed timestamps.
// compression is "" for the mksquashfs default (gzip) or a -comp name.
// Errors carry mksquashfs's argv, exit status and output.
func BuildFromTree(ctx context.Context, tree, out string, compression string) error {
	if st, err := os.Stat(tree); err != nil {
		return fmt.Errorf("building %s: %w", out, err)
	} else if !st.IsDir() {
		return fmt.Errorf("building %s: %s is not a directory", out, tree)
	}
	args := []string{tree, out, "-all-root", "-noappend", "-no-progress", "-quiet",
		"-mkfs-time", "0", "-all-time", "0"}
	if compression != "" {
		args = append(args, "-comp", compression)
	}
	cmd := exec.CommandContext(ctx, "mksquashfs", args...)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		code := -1
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		}
		return fmt.Errorf("running %s (exit %d): %w: %s",
			strings.Join(cmd.Args, " "), code, err, strings.TrimSpace(output.String()))
	}
	return nil
}
