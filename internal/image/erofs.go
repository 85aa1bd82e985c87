package image

import (
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"

	"github.com/erofs/go-erofs"
)

// erofsTree reads an erofs image with github.com/erofs/go-erofs, which
// reads uncompressed images only (v0.3.1); a compressed one fails on its
// first file read and goes to systemd-dissect instead.
type erofsTree struct {
	fsys interface {
		iofs.ReadDirFS
		Lstat(string) (iofs.FileInfo, error)
		ReadLink(string) (string, error)
	}
	f *os.File
}

func openErofs(f *os.File) (t *erofsTree, err error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return openErofsAt(f, 0, st.Size())
}

// openErofsAt reads the erofs at [start, start+size) of f.
func openErofsAt(f *os.File, start, size int64) (t *erofsTree, err error) {
	defer recoverCorrupt(&err)
	fsys, err := erofs.Open(io.NewSectionReader(f, start, size))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	full, ok := fsys.(interface {
		iofs.ReadDirFS
		Lstat(string) (iofs.FileInfo, error)
		ReadLink(string) (string, error)
	})
	if !ok {
		return nil, fmt.Errorf("go-erofs %T lacks Lstat/ReadLink", fsys)
	}
	return &erofsTree{fsys: full, f: f}, nil
}

func erofsPath(p string) string {
	p = path.Clean(p)
	if p == "" {
		return "."
	}
	return p
}

func (t *erofsTree) lstat(p string) (fi iofs.FileInfo, err error) {
	defer recoverCorrupt(&err)
	fi, err = t.fsys.Lstat(erofsPath(p))
	if err != nil {
		return nil, wrapFSErr(p, err)
	}
	return fi, nil
}

func (t *erofsTree) readDir(p string) (es []iofs.DirEntry, err error) {
	defer recoverCorrupt(&err)
	es, err = t.fsys.ReadDir(erofsPath(p))
	if err != nil {
		return nil, wrapFSErr(p, err)
	}
	return es, nil
}

func (t *erofsTree) readlink(p string) (s string, err error) {
	defer recoverCorrupt(&err)
	s, err = t.fsys.ReadLink(erofsPath(p))
	if err != nil {
		return "", wrapFSErr(p, err)
	}
	return s, nil
}

func (t *erofsTree) xattr(p, name string) (string, bool, error) {
	fi, err := t.lstat(p)
	if err != nil {
		return "", false, err
	}
	x, ok := fi.(interface{ GetXattr(string) (string, bool) })
	if !ok {
		return "", false, nil
	}
	v, ok := x.GetXattr(name)
	return v, ok, nil
}

func (t *erofsTree) open(p string, _ iofs.DirEntry) (rc io.ReadCloser, err error) {
	defer recoverCorrupt(&err)
	f, err := t.fsys.Open(erofsPath(p))
	if err != nil {
		return nil, wrapFSErr(p, err)
	}
	return recoveringFile{f}, nil
}

func (t *erofsTree) close() error { return t.f.Close() }

type recoveringFile struct{ f iofs.File }

func (r recoveringFile) Read(b []byte) (n int, err error) {
	defer recoverCorrupt(&err)
	return r.f.Read(b)
}

func (r recoveringFile) Close() error { return r.f.Close() }

// wrapFSErr keeps fs.ErrNotExist recognisable and calls the rest corrupt.
func wrapFSErr(p string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("%s: %w", p, iofs.ErrNotExist)
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
}
