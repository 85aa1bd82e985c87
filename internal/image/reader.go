package image

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
)

// reader carries the read budget of one Inspect.
type reader struct {
	ctx  context.Context
	t    tree
	left int64
}

func (r *reader) readDir(p string) ([]iofs.DirEntry, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	es, err := r.t.readDir(p)
	if err != nil {
		return nil, err
	}
	if len(es) > maxEntries {
		return nil, fmt.Errorf("%w: %s has %d entries, limit %d", ErrTooLarge, p, len(es), maxEntries)
	}
	if err := checkNames(p, es); err != nil {
		return nil, err
	}
	return es, nil
}

func (r *reader) readFile(p string, e iofs.DirEntry, limit int64) ([]byte, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	if limit > r.left {
		limit = r.left
	}
	rc, err := r.t.open(p, e)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := readAllCapped(rc, limit)
	if err != nil {
		if limit == r.left {
			return nil, fmt.Errorf("%w: read more than %d bytes in all", ErrTooLarge, MaxReadTotal)
		}
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	r.left -= int64(len(b))
	return b, nil
}

// chaseDir resolves dir inside the image; missing gives nil, nil.
func (r *reader) chaseDir(dir string) ([]iofs.DirEntry, string, error) {
	resolved, fi, err := chase(r.ctx, r.t, dir)
	if isNotExist(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if !fi.IsDir() {
		return nil, "", nil
	}
	es, err := r.readDir(resolved)
	return es, resolved, err
}

// ReadFile returns the content of the regular file inImage (a path inside
// the image, with or without a leading "/"; symlinks are followed inside
// the image) from the image at p. Files larger than MaxReadSize are an error.
func ReadFile(p, inImage string) ([]byte, error) {
	var out []byte
	err := withTree(context.Background(), p, func(r *reader) error {
		resolved, fi, err := chase(r.ctx, r.t, inImage)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", inImage)
		}
		out, err = r.readFile(resolved, nil, MaxReadSize)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", inImage, filepath.Base(p), err)
	}
	return out, nil
}

// withTree opens the image at p in whatever format and runs fn on it.
func withTree(ctx context.Context, p string, fn func(*reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	head := make([]byte, 8192)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	var t tree
	switch {
	case n >= 96 && string(head[:4]) == "hsqs":
		switch squashfsCompression(head) {
		case "lzma":
			err = fmt.Errorf("%w: lzma", ErrUnsupportedCompression)
		default:
			t, err = openSquashfs(f, st.Size())
		}
	case n >= 1028 && binary.LittleEndian.Uint32(head[1024:1028]) == 0xE0F5E1E2:
		t, err = openErofs(f)
	case isGPT(head):
		info := &Info{Path: p, Size: st.Size()}
		if t, err = openGPT(f, info); err != nil {
			f.Close()
			t, err = openDissect(ctx, p, filepath.Base(p))
		}
	default:
		err = fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if err != nil {
		if t == nil {
			f.Close()
		}
		return err
	}
	defer t.close()
	return fn(&reader{ctx: ctx, t: t, left: MaxReadTotal})
}
