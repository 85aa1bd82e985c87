//go:build e2e

package e2e

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// path returns the host path of an absolute path inside the container.
func (c *Container) path(inside string) string {
	return filepath.Join(c.root, filepath.Clean("/"+inside))
}

// WriteFile writes data to an absolute path inside the container, creating
// parent directories.
func (c *Container) WriteFile(t testing.TB, inside string, data []byte, mode os.FileMode) {
	t.Helper()
	dst := c.path(inside)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatalf("creating %s: %v", filepath.Dir(dst), err)
	}
	if err := writeFileAtomic(dst, data, mode); err != nil {
		t.Fatalf("writing %s in %s: %v", inside, c.name, err)
	}
}

// ReadFile returns the content of an absolute path inside the container.
func (c *Container) ReadFile(t testing.TB, inside string) []byte {
	t.Helper()
	data, err := os.ReadFile(c.path(inside))
	if err != nil {
		t.Fatalf("reading %s in %s: %v", inside, c.name, err)
	}
	return data
}

// ReadFileErr is ReadFile for files that may legitimately be missing.
func (c *Container) ReadFileErr(inside string) ([]byte, error) {
	return os.ReadFile(c.path(inside))
}

// CopyIn copies the host file src to the absolute path inside the container,
// e.g. a freshly built sysextctl to /usr/local/bin/sysextctl (mode 0755).
func (c *Container) CopyIn(t testing.TB, src, inside string, mode os.FileMode) {
	t.Helper()
	dst := c.path(inside)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatalf("creating %s: %v", filepath.Dir(dst), err)
	}
	if err := copyFile(src, dst, mode); err != nil {
		t.Fatalf("copying %s into %s:%s: %v", src, c.name, inside, err)
	}
}

// AddExtension places a built image where systemd-sysext looks for it:
// /var/lib/extensions/NAME.raw. It does not refresh.
func (c *Container) AddExtension(t testing.TB, b *Built) {
	t.Helper()
	c.CopyIn(t, b.Path, "/var/lib/extensions/"+b.Name+".raw", 0o644)
}

// copyFile copies src to dst through a temporary file and a rename, so that
// a watcher never sees a half-written file.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".e2e-copy-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
