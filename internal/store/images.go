package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// In-root locations of the store's own directories. backup/ and staging/
// live under /var/lib/sysextd, on the same file system as
// /var/lib/extensions (so that placing an image is a rename) and outside
// every directory systemd-sysext scans.
const (
	backupDir   = rootfs.StateDir + "/backup"
	stagingDir  = rootfs.StateDir + "/staging"
	previousDir = rootfs.StateDir + "/previous"
)

// ImagePath is where an image lives once installed.
func (s Store) ImagePath(image string) string {
	return s.Root.Path(imageRel(image))
}

func imageRel(image string) string { return rootfs.ExtensionsDir + "/" + image + ".raw" }

func backupRel(image string) string { return backupDir + "/" + image + ".raw" }

// StagingDir is where downloads are written. It is created root-only.
func (s Store) StagingDir() (string, error) {
	if err := s.mkdir(stagingDir, 0o700); err != nil {
		return "", fmt.Errorf("creating staging directory: %w", err)
	}
	return s.Root.Path(stagingDir), nil
}

// mkdir creates an in-root directory (and its parents) without following
// symlinks out of the root.
func (s Store) mkdir(dir string, mode fs.FileMode) error {
	r, err := s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.MkdirAll(rootfs.InRoot(dir), mode)
}

// cleanDir removes every entry of an in-root directory and reports what
// it removed.
func (s Store) cleanDir(dir string) ([]string, error) {
	r, err := s.Root.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	entries, err := fs.ReadDir(r.FS(), rootfs.InRoot(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		p := rootfs.InRoot(dir + "/" + e.Name())
		if err := r.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir+"/"+e.Name())
	}
	return removed, errors.Join(errs...)
}

// Installed lists the image names present in /var/lib/extensions.
func (s Store) Installed() ([]string, error) {
	entries, err := os.ReadDir(s.Root.Path(rootfs.ExtensionsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rootfs.ExtensionsDir, err)
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".raw"); ok && !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	return out, nil
}

// Quarantine moves a file out of the directories systemd-sysext scans into
// /var/lib/sysextd/quarantine, keeping it for the operator. It returns the
// new host path.
func (s Store) Quarantine(inRoot string) (string, error) {
	dir := rootfs.StateDir + "/quarantine"
	if err := s.mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	r, err := s.Root.Open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	dst := dir + "/" + filepath.Base(inRoot)
	if err := r.Rename(rootfs.InRoot(inRoot), rootfs.InRoot(dst)); err != nil {
		return "", fmt.Errorf("moving %s aside: %w", inRoot, err)
	}
	return s.Root.Path(dst), syncDir(s.Root.Path(filepath.Dir(inRoot)))
}

// Rename moves an in-root file to another in-root path (creating the
// target's directory), without following symlinks out of the root.
func (s Store) Rename(from, to string) error {
	if err := s.mkdir(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	r, err := s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Rename(rootfs.InRoot(from), rootfs.InRoot(to)); err != nil {
		return err
	}
	return syncDir(s.Root.Path(filepath.Dir(from)))
}
