package engine

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/sourceref"
)

// LocalImage is an image named on install's command line instead of the
// release its manifest entry names (sysextctl install ./sysext-foo.raw,
// install --image FILE NAME, install oci://REGISTRY/REPO:TAG): a file on
// this host, or an OCI reference. Nothing is written: an extension no
// manifest names stays one that update leaves alone.
type LocalImage struct {
	Name string // the extension
	Path string // an image file on this host (absolute), or
	OCI  string // oci://REGISTRY/REPO[:TAG]
}

// LocalImageError is a local image file that cannot be installed (missing,
// not a regular file).
type LocalImageError struct {
	Path string
	Err  error
}

func (e *LocalImageError) Error() string { return e.Err.Error() }
func (e *LocalImageError) Unwrap() error { return e.Err }

// CheckLocal refuses, before anything is locked or looked up, a local
// image file that is missing or not a regular file.
func CheckLocal(imgs []LocalImage) error {
	for _, li := range imgs {
		if li.OCI != "" {
			continue
		}
		fi, err := os.Stat(li.Path)
		if err != nil {
			return &LocalImageError{Path: li.Path, Err: err}
		}
		if !fi.Mode().IsRegular() {
			return &LocalImageError{Path: li.Path, Err: fmt.Errorf("%s: not a regular file", li.Path)}
		}
	}
	return nil
}

// image is the image name li installs as: its manifest entry's, when en
// is one; else for a file its base name unless that is sysext-NAME or
// NAME; for an OCI reference its repository's last component.
func (li LocalImage) image(en *manifest.Entry) string {
	if en != nil {
		return en.Image()
	}
	own := manifest.Entry{Name: li.Name}
	if li.OCI != "" {
		ref, _ := sourceref.Parse(li.OCI) // parsed by the caller
		own.Asset = path.Base(ref.Path)
	} else if base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(li.Path), ".raw"), ".squashfs"); base != "sysext-"+li.Name && base != li.Name {
		own.Asset = base
	}
	return own.Image()
}

// request is the lookup of li's release: the file itself (the local
// source reads it and takes its digest) or the OCI reference. Only the
// source changes: an OCI reference keeps the entry's prerelease, a pin
// still asks for its version.
func (li LocalImage) request(en *manifest.Entry, pins map[string]string) source.Request {
	r := source.Request{Name: li.Name, URL: li.Path, Image: li.image(en), Version: pins[li.Name]}
	if li.OCI != "" {
		r.URL, r.Prerelease = li.OCI, en != nil && en.Prerelease
	}
	return r
}

// localImages indexes imgs by extension name.
func localImages(imgs []LocalImage) map[string]LocalImage {
	out := make(map[string]LocalImage, len(imgs))
	for _, li := range imgs {
		out[li.Name] = li
	}
	return out
}
