package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNeedsDissect: the image is in a format no Go library here reads
// (lz4 squashfs, compressed erofs, a GPT disk image) and systemd-dissect,
// the fallback, cannot run (not root, or not installed).
var ErrNeedsDissect = errors.New("image needs systemd-dissect to be read")

// dissectTimeout bounds each systemd-dissect call.
const dissectTimeout = 30 * time.Second

// dissectTree is an image mounted read-only by systemd-dissect (the kernel
// reads it, with systemd's own partition and verity logic) and read through
// an os.Root, so no path escapes the mount.
type dissectTree struct {
	dir  string // the mount point (inside a private temp dir)
	tmp  string
	root *os.Root
}

// dissectBinary is systemd-dissect's path, a variable for tests.
var dissectBinary = "systemd-dissect"

func openDissect(ctx context.Context, p, what string) (*dissectTree, error) {
	bin, err := exec.LookPath(dissectBinary)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrNeedsDissect, what, err)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: reading %s mounts it, which needs root", ErrNeedsDissect, what)
	}
	tmp, err := os.MkdirTemp("", "sysextd-dissect-")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, dissectTimeout)
	defer cancel()
	if out, err := runDissect(cctx, bin, "--mount", "--read-only", p, dir); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("reading %s with systemd-dissect: %w: %v: %s", what, ErrCorrupt, err, out)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		umountDissect(bin, dir)
		os.RemoveAll(tmp)
		return nil, err
	}
	return &dissectTree{dir: dir, tmp: tmp, root: root}, nil
}

func runDissect(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// umountDissect runs on a fresh context: an unmount must happen even when
// the caller was cancelled.
func umountDissect(bin, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), dissectTimeout)
	defer cancel()
	if out, err := runDissect(ctx, bin, "--umount", dir); err != nil {
		if err2 := unix.Unmount(dir, unix.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmounting %s: %v: %s", dir, err, out)
		}
	}
	return nil
}

func rootPath(p string) string {
	p = path.Clean(p)
	if p == "" {
		return "."
	}
	return p
}

func (t *dissectTree) lstat(p string) (iofs.FileInfo, error) {
	fi, err := t.root.Lstat(rootPath(p))
	if err != nil {
		return nil, wrapFSErr(p, err)
	}
	return fi, nil
}

func (t *dissectTree) readDir(p string) ([]iofs.DirEntry, error) {
	f, err := t.root.Open(rootPath(p))
	if err != nil {
		return nil, wrapFSErr(p, err)
	}
	defer f.Close()
	es, err := f.ReadDir(-1)
	if err != nil {
		return nil, wrapFSErr(p, err)
	}
	return es, nil
}

func (t *dissectTree) readlink(p string) (string, error) {
	s, err := t.root.Readlink(rootPath(p))
	if err != nil {
		return "", wrapFSErr(p, err)
	}
	return s, nil
}

// xattr reads through the mount; p is already resolved by chase, so the
// path has no symlink to escape by.
func (t *dissectTree) xattr(p, name string) (string, bool, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(filepath.Join(t.dir, rootPath(p)), name, buf)
	switch {
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("reading xattr %s of %s: %w", name, p, err)
	}
	return string(buf[:n]), true, nil
}

func (t *dissectTree) open(p string, _ iofs.DirEntry) (io.ReadCloser, error) {
	f, err := t.root.Open(rootPath(p))
	if err != nil {
		return nil, wrapFSErr(p, err)
	}
	return f, nil
}

func (t *dissectTree) close() error {
	t.root.Close()
	bin, _ := exec.LookPath(dissectBinary)
	err := umountDissect(bin, t.dir)
	if err == nil {
		os.RemoveAll(t.tmp)
	}
	return err
}

func isNotExist(err error) bool { return errors.Is(err, iofs.ErrNotExist) }
