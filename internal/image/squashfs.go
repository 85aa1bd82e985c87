package image

import (
	"encoding/binary"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// squashfsTree reads a squashfs image with go-diskfs (gzip, xz, zstd, lzo,
// lz4: v1.9.4 misreads lz4 blocks, third_party/go-diskfs/PATCHED.md).
type squashfsTree struct {
	fsys *squashfs.FileSystem
	f    *os.File
}

// squashfsCompression reads the compressor from a squashfs superblock.
func squashfsCompression(sb []byte) string {
	switch id := binary.LittleEndian.Uint16(sb[20:22]); id {
	case 1:
		return "gzip"
	case 2:
		return "lzma"
	case 3:
		return "lzo"
	case 4:
		return "xz"
	case 5:
		return "lz4"
	case 6:
		return "zstd"
	default:
		return fmt.Sprintf("unknown(%d)", id)
	}
}

func openSquashfs(f *os.File, size int64) (t *squashfsTree, err error) {
	defer recoverCorrupt(&err)
	fsys, err := squashfs.Read(file.New(f, true), size, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &squashfsTree{fsys: fsys, f: f}, nil
}

func (t *squashfsTree) lstat(p string) (fi iofs.FileInfo, err error) {
	defer recoverCorrupt(&err)
	p = path.Clean(p)
	if p == "." || p == "" {
		fi, err := t.fsys.Stat(".")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return fi, nil
	}
	entries, err := t.readDir(path.Dir(p))
	if err != nil {
		return nil, err
	}
	e, ok := lookup(entries, path.Base(p))
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, iofs.ErrNotExist)
	}
	fi, err = e.Info()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	return fi, nil
}

func (t *squashfsTree) readDir(p string) (es []iofs.DirEntry, err error) {
	defer recoverCorrupt(&err)
	es, err = t.fsys.ReadDir(path.Clean(p))
	if err != nil {
		return nil, fmt.Errorf("%w: listing %s: %v", ErrCorrupt, p, err)
	}
	return es, nil
}

func (t *squashfsTree) statT(p string) (*squashfs.StatT, error) {
	fi, err := t.lstat(p)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*squashfs.StatT)
	if !ok {
		return nil, fmt.Errorf("%w: %s: no squashfs metadata", ErrCorrupt, p)
	}
	return st, nil
}

func (t *squashfsTree) readlink(p string) (string, error) {
	st, err := t.statT(p)
	if err != nil {
		return "", err
	}
	if st.LinkTarget == "" {
		return "", fmt.Errorf("%w: %s: empty symlink", ErrCorrupt, p)
	}
	return st.LinkTarget, nil
}

// xattr: squashfs stores the "user." prefix as a type number that go-diskfs
// v1.9.4 drops, so "user.x" is found under "x".
func (t *squashfsTree) xattr(p, name string) (string, bool, error) {
	st, err := t.statT(p)
	if err != nil {
		return "", false, err
	}
	if v, ok := st.Xattrs[name]; ok {
		return v, true, nil
	}
	if short, ok := cutUserPrefix(name); ok {
		v, ok := st.Xattrs[short]
		return v, ok, nil
	}
	return "", false, nil
}

func (t *squashfsTree) open(p string, e iofs.DirEntry) (rc io.ReadCloser, err error) {
	defer recoverCorrupt(&err)
	if o, ok := e.(interface {
		Open() (filesystem.File, error)
	}); ok {
		f, err := o.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
		}
		return panicSafe{f}, nil
	}
	f, err := t.fsys.OpenFile(path.Clean(p), os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	return panicSafe{f}, nil
}

func (t *squashfsTree) close() error {
	t.fsys.Close()
	return t.f.Close()
}

// panicSafe turns a go-diskfs panic while reading file data into ErrCorrupt.
type panicSafe struct{ f filesystem.File }

func (r panicSafe) Read(b []byte) (n int, err error) {
	defer recoverCorrupt(&err)
	return r.f.Read(b)
}

func (r panicSafe) Close() error { return r.f.Close() }

// recoverCorrupt turns a panic inside a reader library on damaged input
// into an ErrCorrupt error.
func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: reader panicked: %v", ErrCorrupt, r)
	}
}

func cutUserPrefix(name string) (string, bool) {
	const p = "user."
	if len(name) > len(p) && name[:len(p)] == p {
		return name[len(p):], true
	}
	return "", false
}
