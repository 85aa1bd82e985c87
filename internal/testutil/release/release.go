// Package release publishes extension releases shaped like the sysext
// template's (IMAGE_CODENAME_ARCH.squashfs, .manifest and release.json)
// into a fakegithub.Server, for the engine, CLI and end-to-end tests.
package release

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// Ext describes one release of one extension.
type Ext struct {
	Owner, Repo string // default "SpamTagger", "sysext-" + Package
	Package     string // Debian package, the manifest key
	Version     string // PACKAGE_VERSION
	Tag         string // default from the version
	Codename    string // default trixie
	Arch        string // default the host's, as DefaultRelease says
	// Image is the image name; default "sysext-" + Package.
	Image string
	// Spec is the image's content; Name and Release are filled in from
	// the fields above when empty.
	Spec sqfs.Spec
	// Release overrides or adds extension-release fields of the image
	// (e.g. VERSION_ID for a broken release, UPDATE=reboot).
	Release map[string]string
	// ManifestFields overrides what the .manifest asset says (a release
	// whose manifest disagrees with its image).
	ManifestFields map[string]string
	// Extra assets published with the release (SHA256SUMS, signatures).
	Extra map[string][]byte
	// Corrupt publishes a digest that does not match the image.
	Corrupt bool
	// PublishedAt orders releases; default now.
	PublishedAt time.Time
	// ImagePath, when set, is published as the image instead of building
	// one from Spec (e.g. an image built from real Debian packages).
	ImagePath string
}

// Fields returns the extension-release fields the image will carry.
func (x *Ext) Fields() map[string]string {
	x.defaults()
	f := sqfs.DefaultRelease(x.Image)
	f["PACKAGE"] = x.Package
	f["PACKAGE_VERSION"] = x.Version
	if x.Arch != "" {
		f["ARCH"] = x.Arch
	}
	f["VERSION_CODENAME"] = x.Codename
	for k, v := range x.Release {
		if v == "" {
			delete(f, k)
		} else {
			f[k] = v
		}
	}
	return f
}

func (x *Ext) defaults() {
	if x.Image == "" {
		x.Image = "sysext-" + x.Package
	}
	if x.Owner == "" {
		x.Owner = "SpamTagger"
	}
	if x.Repo == "" {
		x.Repo = "sysext-" + x.Package
	}
	if x.Codename == "" {
		x.Codename = "trixie"
	}
	if x.Tag == "" {
		x.Tag = "v" + x.Version
	}
}

// URL is the manifest url of the extension's repository.
func (x *Ext) URL() string {
	x.defaults()
	return "https://github.com/" + x.Owner + "/" + x.Repo
}

// Publish builds the image (unless ImagePath is set) and publishes the
// release. It returns the image's path.
func Publish(t testing.TB, srv *fakegithub.Server, x Ext) string {
	t.Helper()
	fields := x.Fields()
	arch := fields["ARCH"]
	path := x.ImagePath
	if path == "" {
		spec := x.Spec
		if spec.Name == "" {
			spec.Name = x.Image
		}
		if spec.Release == nil {
			spec.Release = fields
		}
		path = sqfs.Build(t, t.TempDir(), spec)
	}
	manifest := map[string]string{}
	for k, v := range fields {
		manifest[k] = v
	}
	for k, v := range x.ManifestFields {
		manifest[k] = v
	}
	relJSON, err := json.Marshal(map[string]any{
		"version":          x.Tag,
		"date":             time.Now().UTC().Format(time.RFC3339),
		"package_versions": map[string]string{x.Codename + "_" + arch: manifest["PACKAGE_VERSION"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("%s_%s_%s", x.Image, x.Codename, arch)
	img := fakegithub.Asset{Name: base + ".squashfs", Path: path}
	if x.Corrupt {
		img.PublishDigest = "sha256:" + fmt.Sprintf("%064x", 1)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("image %s: %v", path, err)
	}
	srv.Publish(x.Owner, x.Repo, fakegithub.Release{
		Tag: x.Tag, PublishedAt: x.PublishedAt,
		Assets: append([]fakegithub.Asset{
			img,
			{Name: base + ".manifest", Data: []byte(sqfs.FormatRelease(manifest)), ContentType: "text/plain"},
			{Name: "release.json", Data: relJSON, ContentType: "application/json"},
		}, extra(x.Extra)...),
	})
	return path
}

// HostArch is the running architecture in Debian's names, as images built
// by sqfs.DefaultRelease carry it.
func HostArch() string { return sqfs.DefaultRelease("x")["ARCH"] }

func extra(m map[string][]byte) []fakegithub.Asset {
	var out []fakegithub.Asset
	for name, data := range m {
		out = append(out, fakegithub.Asset{Name: name, Data: data, ContentType: "application/octet-stream"})
	}
	return out
}
