package image

import (
	"context"
	"fmt"
	iofs "io/fs"
	"path"
	"sort"

	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// PayloadFile is one entry an image carries outside /usr and /opt, under
// etc/ or var/, which systemd-sysext does not merge (internal/payload
// installs them like dpkg conffiles).
type PayloadFile struct {
	Path string        // absolute in-image path, e.g. "/etc/vmware-tools/vgauth.conf"
	Mode iofs.FileMode // type and permission bits
	Data []byte        // content of a regular file
	Link string        // target of a symlink
}

// maxPayloadEntries caps the entries ReadPayload returns.
const maxPayloadEntries = 10000

// ReadPayload returns every directory, regular file and symlink under the
// top-level dirs (e.g. "etc", "var") of the image at p, parents before
// children, sorted by path. Symlinks are returned, never followed; other
// types (devices, fifos) are skipped. Reading is bounded like Inspect's.
func ReadPayload(ctx context.Context, p string, dirs ...string) ([]PayloadFile, error) {
	var out []PayloadFile
	err := withTree(ctx, p, func(r *reader) error {
		var walk func(dir string) error
		walk = func(dir string) error {
			es, err := r.readDir(dir)
			if err != nil {
				return err
			}
			for _, e := range es {
				if err := r.ctx.Err(); err != nil {
					return err
				}
				if len(out) >= maxPayloadEntries {
					return fmt.Errorf("%w: more than %d files under %v", ErrTooLarge, maxPayloadEntries, dirs)
				}
				ip := path.Join(dir, e.Name())
				fi, err := e.Info()
				if err != nil {
					return fmt.Errorf("%w: %s: %v", ErrCorrupt, ip, err)
				}
				f := PayloadFile{Path: "/" + ip, Mode: fullMode(fi)}
				switch {
				case fi.IsDir():
					out = append(out, f)
					if err := walk(ip); err != nil {
						return err
					}
				case fi.Mode()&iofs.ModeSymlink != 0:
					if f.Link, err = r.t.readlink(ip); err != nil {
						return err
					}
					out = append(out, f)
				case fi.Mode().IsRegular():
					if f.Data, err = r.readFile(ip, e, MaxReadSize); err != nil {
						return err
					}
					out = append(out, f)
				}
			}
			return nil
		}
		for _, d := range dirs {
			fi, err := r.t.lstat(d)
			if isNotExist(err) {
				continue
			}
			if err != nil {
				return err
			}
			if !fi.IsDir() {
				continue
			}
			out = append(out, PayloadFile{Path: "/" + d, Mode: fi.Mode()})
			if err := walk(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the etc/var payload of %s: %w", path.Base(p), err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// fullMode is fi's mode with the setuid, setgid and sticky bits, which
// go-diskfs reports only in its StatT.
func fullMode(fi iofs.FileInfo) iofs.FileMode {
	m := fi.Mode()
	if st, ok := fi.Sys().(*squashfs.StatT); ok {
		if st.Perm&0o4000 != 0 {
			m |= iofs.ModeSetuid
		}
		if st.Perm&0o2000 != 0 {
			m |= iofs.ModeSetgid
		}
		if st.Perm&0o1000 != 0 {
			m |= iofs.ModeSticky
		}
	}
	return m
}
