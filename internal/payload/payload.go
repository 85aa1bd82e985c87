// Package payload installs the files an extension image carries under etc/
// and var/ onto the host, the way dpkg handles conffiles: systemd-sysext
// merges only /usr and /opt, so without this a template-built image loses
// its configuration (open-vm-tools' vgauth.conf). docs/design-payload.md
// gives the rules and the read-only (bootc) root case.
//
// Every write goes through an os.Root opened on the target root, so a
// symlink on the host can never lead a write outside it, and every step
// returns a Change whose Undo puts back exactly what was there.
package payload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// Dirs are the image's top-level directories handled as payload.
var Dirs = []string{"etc", "var"}

// File is one etc/ (or var/) file an image carries, as recorded in state.json.
type File struct {
	Path   string `json:"path"`   // absolute in-root path, e.g. /etc/vmware-tools/vgauth.conf
	SHA256 string `json:"sha256"` // hex of the content as shipped (of "symlink:TARGET" for a symlink)
	Mode   uint32 `json:"mode"`   // permission bits, plus os.ModeSymlink for a symlink
	// Installed: we wrote it (false: the admin's file was there and is
	// left alone).
	Installed bool `json:"installed"`
}

// Change is an applied payload step: Undo puts back what was there,
// Commit keeps it. Either ends the step's journal.
type Change interface {
	Undo() error
	Commit() error
}

// Install copies the image's etc/ and var/ files onto the host under root
// like dpkg conffiles: missing ones are written, ones we installed and the
// admin left unmodified (hash equals prev's) are replaced, files the admin
// changed or owns are never touched, and files prev installed that the new
// image no longer ships are removed when unmodified. It returns the new
// records (one per file the image ships) and a Change that restores exactly
// what was there before. On error, what was done is already undone.
//
// journal, when not "", is a file (outside root's payload directories) in
// which every undo step is written before its change is made: after a
// kill, Recover(root, journal) puts the host back; Undo and Commit remove
// it.
func Install(ctx context.Context, root rootfs.Root, imagePath string, prev []File, journal string) ([]File, Change, error) {
	files, err := Read(ctx, imagePath)
	if err != nil {
		return nil, noChange{}, err
	}
	return InstallFiles(ctx, root, files, prev, journal)
}

// Read returns the payload of the image at imagePath (its etc/ and var/
// entries), for Check and InstallFiles.
func Read(ctx context.Context, imagePath string) ([]image.PayloadFile, error) {
	return image.ReadPayload(ctx, imagePath, Dirs...)
}

// InstallFiles is Install for a payload already read (and checked by
// Check): the transaction reads the image once, at verification, and
// installs exactly what the policy let through. A path that is not a clean
// path under one of Dirs is refused before anything is written.
func InstallFiles(ctx context.Context, root rootfs.Root, files []image.PayloadFile, prev []File, journal string) ([]File, Change, error) {
	for _, f := range files {
		if err := checkPath(f.Path); err != nil {
			return nil, noChange{}, err
		}
	}
	r, err := os.OpenRoot(root.Dir())
	if err != nil {
		return nil, noChange{}, fmt.Errorf("opening root %s: %w", root.Dir(), err)
	}
	tx := &tx{root: r, j: &undoJournal{file: journal}}
	if err := tx.j.open(); err != nil {
		r.Close()
		return nil, noChange{}, err
	}
	recs, err := tx.install(ctx, files, prev)
	if err != nil {
		if uerr := tx.Undo(); uerr != nil {
			err = fmt.Errorf("%w (undo: %v)", err, uerr)
		}
		return nil, noChange{}, err
	}
	return recs, tx, nil
}

// Remove deletes the files of recs that we installed and that are
// unmodified (hash still equal), then the directories that became empty
// because of it; it returns a Change that puts them back. journal is as
// for Install.
func Remove(ctx context.Context, root rootfs.Root, recs []File, journal string) (Change, error) {
	r, err := os.OpenRoot(root.Dir())
	if err != nil {
		return noChange{}, fmt.Errorf("opening root %s: %w", root.Dir(), err)
	}
	tx := &tx{root: r, j: &undoJournal{file: journal}}
	if err := tx.j.open(); err != nil {
		r.Close()
		return noChange{}, err
	}
	if err := tx.removeUnmodified(ctx, recs); err != nil {
		if uerr := tx.Undo(); uerr != nil {
			err = fmt.Errorf("%w (undo: %v)", err, uerr)
		}
		return noChange{}, err
	}
	return tx, nil
}

type noChange struct{}

func (noChange) Undo() error   { return nil }
func (noChange) Commit() error { return nil }

// tx records every change as an undo step in its journal, before making
// it; Undo applies the steps in reverse.
type tx struct {
	root *os.Root
	j    *undoJournal
}

// Undo reverts every recorded step, newest first, reports every error,
// and ends the journal when all went back.
func (t *tx) Undo() error {
	if err := undo(t.root, t.j.steps); err != nil {
		return err
	}
	t.j.steps = nil
	return t.j.close()
}

// Commit keeps the changes: the journal is no longer needed.
func (t *tx) Commit() error { return t.j.close() }

func rel(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// checkPath refuses a payload path that is not absolute and clean, or not
// under one of Dirs: image readers refuse such names already, and this
// keeps a reader's bug from becoming a write outside /etc and /var.
func checkPath(p string) error {
	if p != path.Clean(p) || !path.IsAbs(p) {
		return fmt.Errorf("refusing payload path %q: not a clean absolute path", p)
	}
	for _, d := range Dirs {
		if p == "/"+d || strings.HasPrefix(p, "/"+d+"/") {
			return nil
		}
	}
	return fmt.Errorf("refusing payload path %q: outside %v", p, Dirs)
}

// HostOf tells Check what root has at a payload path: ours is true when
// prev (the extension's records) says we installed it, or when the host's
// file already has the shipped content.
func HostOf(root rootfs.Root, prev []File) Host {
	mine := map[string]bool{}
	for _, f := range prev {
		if f.Installed {
			mine[f.Path] = true
		}
	}
	return func(f image.PayloadFile) (exists, ours bool) {
		r, err := os.OpenRoot(root.Dir())
		if err != nil {
			return false, false
		}
		defer r.Close()
		t := &tx{root: r}
		hash, fi, _, err := t.current(f.Path)
		if err != nil {
			return true, false
		}
		if fi == nil {
			return false, false
		}
		return true, mine[f.Path] || (hash != "" && hash == hashOf(f))
	}
}

func hashOf(f image.PayloadFile) string {
	if f.Link != "" {
		return hashBytes([]byte("symlink:" + f.Link))
	}
	return hashBytes(f.Data)
}

func hashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// current describes what the host has at p: its hash for a regular file
// or symlink, exists=false when missing, other=true for anything else.
func (t *tx) current(p string) (hash string, fi iofs.FileInfo, data []byte, err error) {
	fi, err = t.root.Lstat(rel(p))
	if errors.Is(err, iofs.ErrNotExist) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("checking %s: %w", p, err)
	}
	switch {
	case fi.Mode().IsRegular():
		if fi.Size() > image.MaxReadSize {
			return "", fi, nil, nil // not ours: we never ship files this big
		}
		data, err = t.root.ReadFile(rel(p))
		if err != nil {
			return "", nil, nil, fmt.Errorf("reading %s: %w", p, err)
		}
		return hashBytes(data), fi, data, nil
	case fi.Mode()&iofs.ModeSymlink != 0:
		target, err := t.root.Readlink(rel(p))
		if err != nil {
			return "", nil, nil, fmt.Errorf("reading link %s: %w", p, err)
		}
		return hashBytes([]byte("symlink:" + target)), fi, []byte(target), nil
	}
	return "", fi, nil, nil
}

func (t *tx) install(ctx context.Context, files []image.PayloadFile, prev []File) ([]File, error) {
	prevBy := map[string]File{}
	for _, f := range prev {
		prevBy[f.Path] = f
	}
	shipped := map[string]bool{}
	var recs []File
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if f.Mode.IsDir() {
			if err := t.mkdirAll(f.Path, f.Mode.Perm()); err != nil {
				return nil, err
			}
			continue
		}
		shipped[f.Path] = true
		rec := File{Path: f.Path, SHA256: hashOf(f), Mode: uint32(f.Mode.Perm())}
		if f.Link != "" {
			rec.Mode |= uint32(os.ModeSymlink)
		}
		hash, fi, old, err := t.current(f.Path)
		if err != nil {
			return nil, err
		}
		p, had := prevBy[f.Path]
		switch {
		case fi == nil: // missing: install it
			if err := t.put(f, nil, nil); err != nil {
				return nil, err
			}
			rec.Installed = true
		case hash == "": // a directory, device or huge file: not ours
		case had && p.Installed && hash == p.SHA256: // ours, unmodified
			if hash != rec.SHA256 {
				if err := t.put(f, fi, old); err != nil {
					return nil, err
				}
			}
			rec.Installed = true
		case had && p.Installed: // ours, changed by the admin: keep theirs
			rec.Installed = true
			rec.SHA256 = p.SHA256
		}
		recs = append(recs, rec)
	}
	var gone []File
	for _, p := range prev {
		if !shipped[p.Path] {
			gone = append(gone, p)
		}
	}
	if err := t.removeUnmodified(ctx, gone); err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	return recs, nil
}

// mkdirAll creates p and its missing parents, recording each for undo
// (removed again only if still empty).
func (t *tx) mkdirAll(p string, perm iofs.FileMode) error {
	parts := strings.Split(rel(p), "/")
	for i := range parts {
		d := strings.Join(parts[:i+1], "/")
		fi, err := t.root.Lstat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("creating /%s: exists and is not a directory", d)
			}
			continue
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("checking /%s: %w", d, err)
		}
		mode := perm
		if i < len(parts)-1 || mode == 0 {
			mode = 0o755
		}
		if err := t.j.add(step{Op: "rmdir", Path: d}); err != nil {
			return err
		}
		if err := t.root.Mkdir(d, mode); err != nil {
			return fmt.Errorf("creating /%s: %w", d, err)
		}
		if err := t.root.Chmod(d, mode); err != nil {
			return fmt.Errorf("setting the mode of /%s: %w", d, err)
		}
	}
	return nil
}

func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

// put writes f at its path (atomically: temp file, fsync, rename), and
// records how to restore the previous state (old content and info, or
// absence when oldInfo is nil).
func (t *tx) put(f image.PayloadFile, oldInfo iofs.FileInfo, old []byte) error {
	p := rel(f.Path)
	if err := t.mkdirAll(path.Dir("/"+p), 0o755); err != nil {
		return err
	}
	back := step{Op: "remove", Path: p}
	if oldInfo != nil {
		back = step{Op: "restore", Path: p, Mode: uint32(oldInfo.Mode()), Data: old}
	}
	if err := t.j.add(back); err != nil {
		return err
	}
	return t.writeAtomic(p, f)
}

func (t *tx) writeAtomic(p string, f image.PayloadFile) error {
	tmp := tmpName(p)
	_ = t.root.Remove(tmp)
	if f.Link != "" {
		if err := t.root.Symlink(f.Link, tmp); err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
	} else {
		w, err := t.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode.Perm())
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		_, err = w.Write(f.Data)
		if err == nil {
			err = w.Chmod(f.Mode.Perm())
		}
		if err == nil {
			err = w.Sync()
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = t.root.Remove(tmp)
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	if err := t.root.Rename(tmp, p); err != nil {
		_ = t.root.Remove(tmp)
		return fmt.Errorf("writing %s: %w", f.Path, err)
	}
	return nil
}

// restore puts back a regular file or symlink as it was.
func (t *tx) restore(p string, mode iofs.FileMode, old []byte) error {
	back := image.PayloadFile{Path: "/" + p, Mode: mode, Data: old}
	if mode&iofs.ModeSymlink != 0 {
		back = image.PayloadFile{Path: "/" + p, Mode: mode, Link: string(old)}
	}
	if err := t.writeAtomic(p, back); err != nil {
		return fmt.Errorf("restoring /%s: %w", p, err)
	}
	return nil
}

// removeUnmodified deletes each record we installed whose file still has
// the recorded hash, and the directories left empty by that.
func (t *tx) removeUnmodified(ctx context.Context, recs []File) error {
	sorted := append([]File(nil), recs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path > sorted[j].Path })
	dirs := map[string]bool{}
	for _, rec := range sorted {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !rec.Installed {
			continue
		}
		hash, fi, old, err := t.current(rec.Path)
		if err != nil {
			return err
		}
		if fi == nil || hash != rec.SHA256 {
			continue // gone already, or the admin's now
		}
		p := rel(rec.Path)
		if err := t.j.add(step{Op: "restore", Path: p, Mode: uint32(fi.Mode()), Data: old}); err != nil {
			return err
		}
		if err := t.root.Remove(p); err != nil {
			return fmt.Errorf("removing %s: %w", rec.Path, err)
		}
		for d := path.Dir(p); d != "." && d != "etc" && d != "var"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var ds []string
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return len(ds[i]) > len(ds[j]) })
	for _, d := range ds {
		fi, err := t.root.Lstat(d)
		if err != nil || !fi.IsDir() {
			continue
		}
		if err := t.j.add(step{Op: "mkdir", Path: d, Mode: uint32(fi.Mode().Perm())}); err != nil {
			return err
		}
		if err := t.root.Remove(d); err != nil {
			continue // not empty: someone else's files live there
		}
	}
	return nil
}

// Equal reports whether two record lists are the same, for callers that
// only rewrite the state when something changed.
func Equal(a, b []File) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
