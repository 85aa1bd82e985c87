package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"strings"
)

// tree is a read-only view of an image's file system, whatever its format.
// Paths are slash-separated, relative to the image root ("" or "." is the
// root), and never resolve symlinks: chase does that inside the image.
type tree interface {
	// lstat describes p without following a final symlink; a missing
	// entry gives an error wrapping fs.ErrNotExist.
	lstat(p string) (iofs.FileInfo, error)
	// readDir lists the directory p (already resolved).
	readDir(p string) ([]iofs.DirEntry, error)
	// readlink returns the target of the symlink p.
	readlink(p string) (string, error)
	// xattr returns the extended attribute name of p and whether it is set.
	xattr(p, name string) (string, bool, error)
	// open opens the regular file p; e, when not nil, is p's entry from
	// readDir, which lets a format open it without a second lookup.
	open(p string, e iofs.DirEntry) (io.ReadCloser, error)
	close() error
}

// maxSymlinkHops bounds symlink resolution inside an image, as the kernel's
// and systemd's chase() do (ELOOP after 40).
const maxSymlinkHops = 40

var errLoop = errors.New("too many levels of symbolic links")

// chase resolves p inside the image the way systemd's chase() with
// CHASE_PREFIX_ROOT does: ".." never leaves the root, absolute symlink
// targets restart at the image root, the final component is followed too.
// It returns the resolved path and its (non-symlink) info.
func chase(ctx context.Context, t tree, p string) (string, iofs.FileInfo, error) {
	todo := splitPath(p)
	var done []string
	hops := 0
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			return "", nil, err
		}
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := path.Join(append(append([]string{}, done...), c)...)
		fi, err := t.lstat(cur)
		if err != nil {
			return "", nil, err
		}
		if fi.Mode()&iofs.ModeSymlink == 0 {
			if len(todo) > 0 && !fi.IsDir() {
				return "", nil, fmt.Errorf("%s: %w (not a directory)", cur, iofs.ErrNotExist)
			}
			done = append(done, c)
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", nil, fmt.Errorf("%s: %w", p, errLoop)
		}
		target, err := t.readlink(cur)
		if err != nil {
			return "", nil, err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(splitPath(target), todo...)
	}
	resolved := path.Join(done...)
	if resolved == "" {
		resolved = "."
	}
	fi, err := t.lstat(resolved)
	if err != nil {
		return "", nil, err
	}
	return resolved, fi, nil
}

// splitPath splits p into its non-empty, non-"." components.
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// lookup finds name in the entries of dir; a small helper for formats whose
// library only lists directories.
func lookup(entries []iofs.DirEntry, name string) (iofs.DirEntry, bool) {
	for _, e := range entries {
		if e.Name() == name {
			return e, true
		}
	}
	return nil, false
}

// readAllCapped reads r up to limit bytes; more is an error.
func readAllCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("file exceeds limit %d bytes", limit)
	}
	return b, nil
}
