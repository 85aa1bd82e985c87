package rootfs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WriteFile writes data to the in-root path p atomically: a temporary
// file beside it, fsynced, renamed over p, and the directory fsynced.
// Every step resolves inside the root (os.Root): a symlink anywhere on the
// way (R/run, R/var/cache linked elsewhere) cannot lead the write out of it.
func (r Root) WriteFile(p string, data []byte, mode fs.FileMode) error {
	h, err := r.Open()
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	defer h.Close()
	return WriteAtomic(h, InRoot(p), data, mode)
}

// AppendLine appends line (and a newline) to the in-root path p, created
// with mode, through the root.
func (r Root) AppendLine(p, line string, mode fs.FileMode) error {
	h, err := r.Open()
	if err != nil {
		return fmt.Errorf("appending to %s: %w", p, err)
	}
	defer h.Close()
	rel := InRoot(p)
	if err := h.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
	}
	f, err := h.OpenFile(rel, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
	if err != nil {
		return fmt.Errorf("appending to %s: %w", p, err)
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("appending to %s: %w", p, err)
	}
	return nil
}

// WriteAtomic writes data to rel (relative to h) through a temporary file
// beside it, fsynced and renamed over rel, then fsyncs the directory.
func WriteAtomic(h *os.Root, rel string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(rel)
	if err := h.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := filepath.Join(dir, "."+filepath.Base(rel)+"."+hex.EncodeToString(suffix[:]))
	f, err := h.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	defer h.Remove(tmp) // fails harmlessly after the rename
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("writing %s: %w", rel, werr)
	}
	if err := h.Rename(tmp, rel); err != nil {
		return fmt.Errorf("replacing %s: %w", rel, err)
	}
	d, err := h.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// WriteUnder writes data to name (a relative path) under the host
// directory base, atomically, with every step resolved inside base: the
// caches' writer. base is created when missing; Contain checks that it
// stays inside the root before it is handed out.
func WriteUnder(base, name string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", base, err)
	}
	h, err := os.OpenRoot(base)
	if err != nil {
		return fmt.Errorf("opening %s: %w", base, err)
	}
	defer h.Close()
	return WriteAtomic(h, name, data, mode)
}

// Contain returns the host path of the in-root directory p when every
// symlink on the way to it resolves inside the root (or it does not exist
// yet), and an error naming where it leads otherwise: a cache under a
// R/var/cache that links out of the root must not be written.
func (r Root) Contain(p string) (string, error) {
	host := r.Path(p)
	if r.IsHost() {
		return host, nil
	}
	probe := host
	for {
		real, err := filepath.EvalSymlinks(probe)
		if err == nil {
			rootReal, rerr := filepath.EvalSymlinks(r.Dir())
			if rerr != nil {
				return "", rerr
			}
			if real != rootReal && !strings.HasPrefix(real, rootReal+string(filepath.Separator)) {
				return "", fmt.Errorf("%s resolves to %s, outside the root %s", p, real, r.Dir())
			}
			return host, nil
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			return host, nil
		}
		probe = parent
	}
}
