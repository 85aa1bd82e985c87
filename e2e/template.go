//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// BuildTemplateExtension builds an image the way the real sysext template
// does, unlike BuildDebExtension: every file of the package and of the
// dependencies apt pulled (etc/ and var/ included, conffiles too), packed
// with zstd and without -all-root. The tree is cached under
// CacheDir()/debext-template/PKG-KEY.
func BuildTemplateExtension(t testing.TB, base *Base, pkg string, opts ExtOptions) *Built {
	t.Helper()
	requireRoot(t)
	ensureTools(t)
	tree, meta := templateTree(t, base, pkg)
	if opts.Dist == nil {
		opts.Dist = &base.Dist
	}
	work := filepath.Join(t.TempDir(), "tree")
	mustRun(t, t.Context(), "cp", "-a", "--reflink=auto", tree, work)
	name := opts.Name
	if name == "" {
		name = "sysext-" + pkg
	}
	b := &Built{Name: name, Package: pkg, Version: meta.Version, Release: releaseFields(name, pkg, meta.Version, opts), Packages: meta.Packages}
	rel := filepath.Join(work, "usr/lib/extension-release.d/extension-release."+name)
	if err := os.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rel, b.ReleaseFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, content := range opts.ExtraFiles {
		dst := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.Files = append(append([]string(nil), meta.Files...), "usr/lib/extension-release.d/extension-release."+name)
	sort.Strings(b.Files)
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	b.Path = filepath.Join(dir, name+".raw")
	mustRun(t, t.Context(), "mksquashfs", work, b.Path, "-comp", "zstd", "-noappend", "-no-progress", "-quiet")
	return b
}

func templateTree(t testing.TB, base *Base, pkg string) (string, debMeta) {
	t.Helper()
	return cachedTree(t, base, pkg, "debext-template", collectAll)
}

// collectAll copies every regular file and symlink of package name from
// upper into stage, wherever it lives (the template's way), keeping modes
// and owners, and returns the relative paths.
func collectAll(upper, stage, name string) ([]string, error) {
	return collectFiles(upper, stage, name, func(rel string) bool {
		return rel != "" && rel != "." && !strings.HasPrefix(rel, "..")
	})
}
