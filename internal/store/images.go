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

// ImagePath is where an image lives once installed.
func (s Store) ImagePath(image string) string {
	return s.Root.Path(rootfs.ExtensionsDir + "/" + image + ".raw")
}

// StagingDir is where downloads are written: under /var/lib/sysextd, a
// directory systemd-sysext never scans, on the same file system as the
// store so that placing an image is a rename.
func (s Store) StagingDir() (string, error) {
	dir := s.Root.Path(rootfs.StateDir + "/staging")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating staging directory: %w", err)
	}
	return dir, nil
}

// CleanStaging removes leftovers of interrupted downloads. Call it with the
// lock held.
func (s Store) CleanStaging() {
	dir := s.Root.Path(rootfs.StateDir + "/staging")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

func (s Store) backupPath(image string) string {
	return s.Root.Path(rootfs.StateDir + "/backup/" + image + ".raw")
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

// Change is one image swap that can be undone until it is committed.
type Change struct {
	store  Store
	image  string
	backup string // where the previous image was moved, "" if there was none
	placed bool   // a new image was renamed into place
}

// Place renames a verified staged file into the store as image, moving
// any previous image aside first. Undo puts things back.
func (s Store) Place(staged, image string) (*Change, error) {
	c, err := s.moveAside(image)
	if err != nil {
		return nil, err
	}
	dst := s.ImagePath(image)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		c.Undo()
		return nil, fmt.Errorf("creating %s: %w", rootfs.ExtensionsDir, err)
	}
	if err := os.Chmod(staged, 0o644); err != nil {
		c.Undo()
		return nil, fmt.Errorf("placing %s: %w", image, err)
	}
	if err := os.Rename(staged, dst); err != nil {
		c.Undo()
		return nil, fmt.Errorf("placing %s: %w", image, err)
	}
	c.placed = true
	return c, syncDir(filepath.Dir(dst))
}

// Take moves an installed image out of the store (for removal); Undo
// brings it back.
func (s Store) Take(image string) (*Change, error) {
	return s.moveAside(image)
}

func (s Store) moveAside(image string) (*Change, error) {
	c := &Change{store: s, image: image}
	src := s.ImagePath(image)
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	bak := s.backupPath(image)
	if err := os.MkdirAll(filepath.Dir(bak), 0o755); err != nil {
		return nil, fmt.Errorf("creating backup directory: %w", err)
	}
	os.RemoveAll(bak)
	if err := os.Rename(src, bak); err != nil {
		return nil, fmt.Errorf("moving %s aside: %w", image, err)
	}
	c.backup = bak
	return c, nil
}

// HadPrevious reports whether an earlier image was moved aside.
func (c *Change) HadPrevious() bool { return c.backup != "" }

// Undo restores the store to what it was before the change.
func (c *Change) Undo() error {
	dst := c.store.ImagePath(c.image)
	if c.placed {
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("taking %s out: %w", c.image, err)
		}
		c.placed = false
	}
	if c.backup != "" {
		if err := os.Rename(c.backup, dst); err != nil {
			return fmt.Errorf("restoring previous %s: %w", c.image, err)
		}
		c.backup = ""
	}
	return syncDir(filepath.Dir(dst))
}

// Commit drops the backup: the change is final.
func (c *Change) Commit() error {
	if c.backup == "" {
		return nil
	}
	err := os.Remove(c.backup)
	c.backup = ""
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dropping backup of %s: %w", c.image, err)
	}
	return nil
}
