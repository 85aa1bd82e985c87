// Package ocibase extracts what sysext-build needs from a base given as an
// OCI image (e.g. the vendor's bootc image): the dpkg status, passwd,
// group, os-release and archive keyrings, read from the flattened image
// without running it.
package ocibase

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// wanted reports whether a path of the image (without leading "/") is
// something a build reads.
func wanted(p string) bool {
	switch p {
	case "var/lib/dpkg/status", "etc/passwd", "etc/group", "etc/os-release", "usr/lib/os-release":
		return true
	}
	return strings.HasPrefix(p, "usr/share/keyrings/") && !strings.HasSuffix(p, "/")
}

// maxFile bounds one extracted file (a dpkg status is a few MiB).
const maxFile = 64 << 20

// Pull fetches ref for platform linux/arch ("" for the registry's default)
// and extracts the files a build reads into dir. insecure allows a plain
// HTTP registry (tests).
func Pull(ctx context.Context, ref, arch, dir string, insecure bool) error {
	opts := []crane.Option{crane.WithContext(ctx)}
	if arch != "" {
		opts = append(opts, crane.WithPlatform(&v1.Platform{OS: "linux", Architecture: arch}))
	}
	if insecure {
		opts = append(opts, crane.Insecure)
	}
	img, err := crane.Pull(ref, opts...)
	if err != nil {
		return fmt.Errorf("pulling base image %s: %w", ref, err)
	}
	return Extract(img, dir)
}

// Extract writes the wanted files of img's flattened filesystem into dir.
// Symlinks among them (etc/os-release -> ../usr/lib/os-release) are kept
// as symlinks. It fails when the image has no dpkg status.
func Extract(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading image layers: %w", err)
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if !wanted(p) {
			continue
		}
		if err := root.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeReg:
			f, err := root.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			n, err := io.Copy(f, io.LimitReader(tr, maxFile+1))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("extracting %s: %w", p, err)
			}
			if n > maxFile {
				return fmt.Errorf("extracting %s: larger than %d bytes", p, maxFile)
			}
			found = found || p == "var/lib/dpkg/status"
		case tar.TypeSymlink:
			root.Remove(p)
			if err := root.Symlink(h.Linkname, p); err != nil {
				return err
			}
		}
	}
	if !found {
		return errors.New("the image has no var/lib/dpkg/status: not a Debian image, or its package database was removed")
	}
	return nil
}
