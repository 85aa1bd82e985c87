//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// ExtOptions tunes how an extension image is built. The zero value gives a
// valid trixie amd64 extension named sysext-PKG.
type ExtOptions struct {
	// Name is the image name (extension-release.NAME, NAME.raw); default
	// "sysext-" + package.
	Name string
	// Update is written as UPDATE= when set ("none", "reboot", "service: X").
	Update string
	// Repository is REPOSITORY=; default https://github.com/SpamTagger/NAME.
	Repository string
	// BuildTime is BUILD_TIME=; default now.
	BuildTime time.Time
	// Release overrides extension-release fields after the defaults are
	// set: a value replaces or adds the field, "" removes it. Use it for
	// broken images (VERSION_ID=12, ARCHITECTURE=arm64, ...).
	Release map[string]string
	// ExtraFiles adds files to the image (path relative to the image root,
	// e.g. "etc/evil.conf" for an image that must be refused).
	ExtraFiles map[string]string
	// Dir is where the image is written; default a test temp dir.
	Dir string
	// Dist is the release the image is built for (VERSION_ID,
	// VERSION_CODENAME); nil is the base's dist for deb extensions, else
	// trixie.
	Dist *Dist
}

// Built is an extension image on the host, ready to place in a container or
// to serve as a release asset.
type Built struct {
	// Name is the image name: the file is NAME.raw in /var/lib/extensions.
	Name string
	// Path is the host path of the squashfs image.
	Path string
	// Package and Version are PACKAGE= and PACKAGE_VERSION=.
	Package, Version string
	// Release is the extension-release file as written, in order.
	Release []Field
	// Packages maps each Debian package whose files the image carries to
	// its version (deb extensions only).
	Packages map[string]string
	// Files lists the image's paths, relative, sorted.
	Files []string
}

// Field is one KEY=VALUE line of an extension-release file.
type Field struct{ Key, Value string }

// ReleaseFile is the extension-release content, which the template also
// publishes as the IMAGE_CODENAME_ARCH.manifest release asset.
func (b *Built) ReleaseFile() []byte {
	var s strings.Builder
	for _, f := range b.Release {
		fmt.Fprintf(&s, "%s=%s\n", f.Key, f.Value)
	}
	return []byte(s.String())
}

// Get returns the value of an extension-release field, "" when absent.
func (b *Built) Get(key string) string {
	for _, f := range b.Release {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

// releaseFields returns the extension-release fields the template writes,
// with opts applied.
func releaseFields(name, pkg, version string, opts ExtOptions) []Field {
	repo := opts.Repository
	if repo == "" {
		repo = "https://github.com/SpamTagger/" + name
	}
	built := opts.BuildTime
	if built.IsZero() {
		built = time.Now()
	}
	dist := Trixie
	if opts.Dist != nil {
		dist = *opts.Dist
	}
	fields := []Field{
		{"ID", "debian"}, {"VERSION_ID", dist.VersionID}, {"ARCHITECTURE", "x86-64"}, {"ARCH", "amd64"},
		{"VERSION_CODENAME", dist.Suite}, {"NAME", name}, {"PACKAGE", pkg},
		{"PACKAGE_VERSION", version}, {"BUILD_TIME", built.UTC().Format(time.RFC3339)},
		{"REPOSITORY", repo},
	}
	if opts.Update != "" {
		fields = append(fields, Field{"UPDATE", opts.Update})
	}
	keys := make([]string, 0, len(opts.Release))
	for k := range opts.Release {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := opts.Release[k]
		i := slices.IndexFunc(fields, func(f Field) bool { return f.Key == k })
		switch {
		case i >= 0 && v == "":
			fields = slices.Delete(fields, i, i+1)
		case i >= 0:
			fields[i].Value = v
		case v != "":
			fields = append(fields, Field{k, v})
		}
	}
	return fields
}

// finishImage writes the release file and extra files into tree and packs it
// with mksquashfs the way the template does.
func finishImage(t testing.TB, tree, pkg, version string, opts ExtOptions) *Built {
	t.Helper()
	name := opts.Name
	if name == "" {
		name = "sysext-" + pkg
	}
	b := &Built{Name: name, Package: pkg, Version: version, Release: releaseFields(name, pkg, version, opts)}
	files := map[string][]byte{"usr/lib/extension-release.d/extension-release." + name: b.ReleaseFile()}
	for p, content := range opts.ExtraFiles {
		files[p] = []byte(content)
	}
	for p, content := range files {
		dst := filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatalf("creating %s: %v", filepath.Dir(dst), err)
		}
		if err := os.WriteFile(dst, content, 0o644); err != nil {
			t.Fatalf("writing %s: %v", dst, err)
		}
	}
	err := filepath.Walk(tree, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, err := filepath.Rel(tree, p)
		b.Files = append(b.Files, rel)
		return err
	})
	if err != nil {
		t.Fatalf("listing %s: %v", tree, err)
	}
	sort.Strings(b.Files)

	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	b.Path = filepath.Join(dir, name+".raw")
	mustRun(t, t.Context(), "mksquashfs", tree, b.Path, "-all-root", "-noappend", "-no-progress", "-quiet")
	return b
}

// BuildServiceExtension builds a small handmade extension named
// opts.Name (default sysext-NAME) that ships NAME.service, enabled-able
// (WantedBy=multi-user.target) but not enabled. When started, the service
// logs "NAME VERSION started", writes VERSION to /run/NAME/started-version
// and sleeps; /usr/lib/NAME/version holds VERSION. Tests use it to see that
// a unit from an extension runs, and which version a restart picked up.
func BuildServiceExtension(t testing.TB, name, version string, opts ExtOptions) *Built {
	t.Helper()
	requireRoot(t)
	ensureTools(t)
	tree := t.TempDir()
	unit := fmt.Sprintf(`[Unit]
Description=sysextd e2e test service %[1]s

[Service]
Type=simple
ExecStart=/usr/libexec/%[1]s/run

[Install]
WantedBy=multi-user.target
`, name)
	script := fmt.Sprintf(`#!/bin/sh
set -e
v=$(cat /usr/lib/%[1]s/version)
mkdir -p /run/%[1]s
echo "$v" > /run/%[1]s/started-version
echo "%[1]s $v started"
exec sleep infinity
`, name)
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{"usr/lib/systemd/system/" + name + ".service", unit, 0o644},
		{"usr/libexec/" + name + "/run", script, 0o755},
		{"usr/lib/" + name + "/version", version + "\n", 0o644},
	}
	for _, f := range files {
		dst := filepath.Join(tree, f.path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatalf("creating %s: %v", filepath.Dir(dst), err)
		}
		if err := os.WriteFile(dst, []byte(f.content), f.mode); err != nil {
			t.Fatalf("writing %s: %v", dst, err)
		}
	}
	return finishImage(t, tree, name, version, opts)
}
