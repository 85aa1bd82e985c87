package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/spamtagger/sysextd/internal/builder/debian"
	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/trust"
)

// Base is what a build adds to: the installed packages of a root (its
// dpkg status) and its users and groups.
type Base struct {
	Dir       string // rootfs directory, "" when only a status file is known
	Installed *debian.Universe
	Users     map[string]int
	Groups    map[string]int
	Codename  string // VERSION_CODENAME of its os-release, may be ""
}

// LoadBase reads a root directory (var/lib/dpkg/status, etc/passwd,
// etc/group, etc/os-release) or a dpkg status file.
func LoadBase(path string) (*Base, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading base: %w", err)
	}
	b := &Base{}
	status := path
	if st.IsDir() {
		b.Dir = path
		status = filepath.Join(path, "var/lib/dpkg/status")
		if b.Users, err = debian.ReadIDs(filepath.Join(path, "etc/passwd")); err != nil {
			return nil, err
		}
		if b.Groups, err = debian.ReadIDs(filepath.Join(path, "etc/group")); err != nil {
			return nil, err
		}
		if b.Codename, err = baseCodename(path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(status)
	if err != nil {
		return nil, fmt.Errorf("reading base dpkg status: %w", err)
	}
	defer f.Close()
	pkgs, err := debian.ParseStatus(f, status)
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("%s: no installed packages", status)
	}
	if b.Installed, err = debian.NewUniverse(pkgs); err != nil {
		return nil, err
	}
	return b, nil
}

// baseCodename is the VERSION_CODENAME of the base tree's OS identity
// (osrelease.ReadOS: /etc/os-release, then /usr/lib/os-release); a tree
// without one has none.
func baseCodename(dir string) (string, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("reading base: %w", err)
	}
	defer r.Close()
	id, _, err := osrelease.ReadOS(r)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading base: %w", err)
	}
	return id.VersionCodename, nil
}

// Options is one build.
type Options struct {
	Metadata *Metadata
	// Bases maps a dist to its base; "" is the base for every dist not
	// listed.
	Bases   map[string]*Base
	Archive *debian.Archive
	OutDir  string
	// WorkDir holds the unpacked trees (default: a directory in OutDir,
	// removed afterwards).
	WorkDir string
	Now     time.Time // BUILD_TIME and the default tag
	Tag     string    // release.json version; default Now as TagLayout
	// NoRecommends leaves Recommends out (apt installs them by default).
	NoRecommends bool
	// Signers sign SHA256SUMS (SHA256SUMS.minisig, SHA256SUMS.gpg; see
	// internal/trust). Without signers, signature files left in OutDir by
	// an earlier build are removed so they cannot disagree with the list.
	Signers []trust.Signer
	Log     io.Writer
}

// Image is one built image.
type Image struct {
	Dist, Arch string
	Path       string // the .squashfs
	Manifest   string // the .manifest
	Fields     []Field
	// Packages maps every Debian package unpacked into the image to its
	// version.
	Packages   map[string]string
	Resolution *debian.Resolution
	// Scripts lists the packages with maintainer scripts that do real
	// work, which never run for an extension.
	Scripts []*debian.MaintScripts
	Dropped []string
	Files   []string // paths in the image, sorted (without the release file)
	// Warnings are image.Validate's remarks (e.g. etc/ is not merged).
	Warnings []string
}

// Result is a whole build.
type Result struct {
	Images  []*Image
	Release *ReleaseJSON
	Assets  []string // file names in OutDir, SHA256SUMS last
}

// Build writes every image of o.Metadata and the release files into
// o.OutDir. Nothing is written to OutDir unless every image builds.
func Build(ctx context.Context, o Options) (*Result, error) {
	m := o.Metadata
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Tag == "" {
		o.Tag = o.Now.UTC().Format(TagLayout)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	work := o.WorkDir
	if work == "" {
		w, err := os.MkdirTemp(o.OutDir, ".work-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(w)
		work = w
	}
	res := &Result{Release: &ReleaseJSON{
		Version: o.Tag, Date: o.Now.UTC().Format(time.RFC3339),
		PackageVersions: map[string]string{}, Packages: map[string]map[string]string{},
		Builder: "sysext-build",
	}}
	staged := filepath.Join(work, "out")
	if err := os.MkdirAll(staged, 0o755); err != nil {
		return nil, err
	}
	for _, dist := range m.Dists {
		base, err := o.baseFor(dist)
		if err != nil {
			return nil, err
		}
		for _, arch := range m.Architectures {
			img, err := buildOne(ctx, o, base, dist, arch, work, staged)
			if err != nil {
				return nil, fmt.Errorf("building %s for %s %s: %w", m.Name, dist, arch, err)
			}
			res.Images = append(res.Images, img)
			res.Release.PackageVersions[Key(dist, arch)] = img.Packages[m.Package]
			res.Release.Packages[Key(dist, arch)] = img.Packages
		}
	}
	if err := writeJSON(filepath.Join(staged, "release.json"), res.Release); err != nil {
		return nil, err
	}
	var names []string
	for _, img := range res.Images {
		names = append(names, filepath.Base(img.Path), filepath.Base(img.Manifest))
	}
	names = append(names, "release.json")
	if err := WriteSHA256SUMS(staged, names); err != nil {
		return nil, err
	}
	names = append(names, "SHA256SUMS")
	sums, err := os.ReadFile(filepath.Join(staged, "SHA256SUMS"))
	if err != nil {
		return nil, err
	}
	for _, sg := range o.Signers {
		sig, err := sg.Sign(sums)
		if err != nil {
			return nil, fmt.Errorf("signing SHA256SUMS with %s: %w", sg.ID(), err)
		}
		if err := writeFile(filepath.Join(staged, sg.File()), sig); err != nil {
			return nil, err
		}
		names = append(names, sg.File())
	}
	for _, stale := range []string{trust.MinisignFile, trust.OpenPGPFile} {
		if !slices.Contains(names, stale) {
			if err := os.Remove(filepath.Join(o.OutDir, stale)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(staged, n), filepath.Join(o.OutDir, n)); err != nil {
			return nil, err
		}
	}
	for _, img := range res.Images {
		img.Path = filepath.Join(o.OutDir, filepath.Base(img.Path))
		img.Manifest = filepath.Join(o.OutDir, filepath.Base(img.Manifest))
	}
	res.Assets = names
	return res, nil
}

// baseFor returns the base for dist.
func (o Options) baseFor(dist string) (*Base, error) {
	base := o.Bases[dist]
	if base == nil {
		base = o.Bases[""]
	}
	if base == nil {
		return nil, fmt.Errorf("no base for %s: pass --base", dist)
	}
	if base.Codename != "" && base.Codename != dist {
		return nil, fmt.Errorf("base %s is %s, not %s: pass --base %s=DIR", base.Dir, base.Codename, dist, dist)
	}
	return base, nil
}

func buildOne(ctx context.Context, o Options, base *Base, dist, arch, work, staged string) (*Image, error) {
	m := o.Metadata
	start := time.Now()
	avail, err := o.Archive.Universe(ctx, dist, m.Component, arch)
	if err != nil {
		return nil, err
	}
	res, err := debian.Resolve(avail, base.Installed, m.Package, debian.ResolveOptions{NoRecommends: o.NoRecommends})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "%s %s: %d packages to add to the base (%d in the archive), resolved in %s\n",
		dist, arch, len(res.Packages), avail.Len(), time.Since(start).Round(time.Millisecond))
	img := &Image{Dist: dist, Arch: arch, Resolution: res, Packages: map[string]string{}}
	dir := filepath.Join(work, ImageBase(m.Name, dist, arch))
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tree, err := debian.NewTree(dir)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	tree.Users, tree.Groups = base.Users, base.Groups
	for _, p := range res.Packages {
		path, err := o.Archive.Fetch(ctx, p)
		if err != nil {
			return nil, err
		}
		ms, err := tree.Unpack(path, p.Name)
		if err != nil {
			return nil, err
		}
		if len(ms.Actions) > 0 {
			img.Scripts = append(img.Scripts, ms)
		}
		img.Packages[p.Name] = p.Version.String()
		fmt.Fprintf(o.Log, "  %s %s (%s)\n", p.Name, p.Version, p.Suite)
	}
	img.Dropped = tree.Dropped
	for _, e := range tree.Sorted() {
		if e.Type != '5' { // tar.TypeDir
			img.Files = append(img.Files, e.Path)
		}
	}
	img.Fields = ReleaseFields(m, dist, arch, img.Packages[m.Package], o.Now)
	relDir := filepath.Join(dir, "usr/lib/extension-release.d")
	if err := os.MkdirAll(relDir, 0o755); err != nil {
		return nil, err
	}
	relFile := filepath.Join(relDir, "extension-release."+m.Name)
	if err := os.WriteFile(relFile, FormatFields(img.Fields), 0o644); err != nil {
		return nil, err
	}
	baseName := ImageBase(m.Name, dist, arch)
	img.Path = filepath.Join(staged, baseName+".squashfs")
	img.Manifest = filepath.Join(staged, baseName+".manifest")
	if err := writeFile(img.Manifest, FormatFields(img.Fields)); err != nil {
		return nil, err
	}
	if err := Mksquashfs(ctx, dir, img.Path, tree.Entries); err != nil {
		return nil, err
	}
	info, err := image.Inspect(img.Path)
	if err != nil {
		return nil, fmt.Errorf("reading back %s: %w", img.Path, err)
	}
	host := image.Host{ID: "debian", VersionID: VersionIDs[dist], Arch: arch}
	if img.Warnings, err = image.Validate(info, host, m.Name); err != nil {
		return nil, fmt.Errorf("the image just built would be refused: %w", err)
	}
	sort.Strings(img.Files)
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	fmt.Fprintf(o.Log, "%s: %d files in %s\n", filepath.Base(img.Path), len(img.Files), time.Since(start).Round(time.Millisecond))
	return img, nil
}
