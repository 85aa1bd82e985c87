// Package shadow tells, before an image is placed, what it would hide: the
// files it adds under /usr and /opt that the base tree already has (the
// overlay wins silently), and the files it ships that an installed
// extension ships too (then the overlay order decides, silently as well).
package shadow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// Bounds of one listing: an image with more entries, or that takes longer
// to list, is refused rather than let a crafted image hold the lock.
const (
	MaxEntries  = 500_000
	ListTimeout = 60 * time.Second
)

// ErrTooLarge is returned when an image has more than MaxEntries entries.
var ErrTooLarge = errors.New("too many entries")

// Entry is one path an image carries under usr/ or opt/.
type Entry struct {
	Path string // absolute in-root path: /usr/bin/hello
	Dir  bool
}

// Overlap is a file two extensions both ship.
type Overlap struct {
	Path string `json:"path"`
	// With is the installed extension (manifest name) that ships it too.
	With string `json:"with"`
	// Wins is the image whose copy is seen when both are merged: the one
	// whose name sorts last (systemd-sysext stacks images in name order;
	// TestShadowingIsReal checks it).
	Wins string `json:"wins"`
}

// Report is what Check found.
type Report struct {
	Image string `json:"image"` // the image file checked
	// Adds are the files (not directories) the image carries under /usr
	// and /opt, sorted; its own extension-release file is left out.
	Adds []string `json:"adds"`
	// Shadows are the Adds that exist in the base tree: merged, the
	// image's copy wins and the base's is hidden.
	Shadows []string `json:"shadows"`
	// Overlaps are the Adds an installed extension ships too.
	Overlaps []Overlap `json:"overlaps"`
	// BaseUnknown is true when /usr is merged already (systemd-sysext's
	// marker /usr/.systemd-sysext exists): a path an installed extension
	// ships is then an Overlap, and whether the base has it too cannot be
	// told from the merged tree.
	BaseUnknown bool `json:"base_unknown,omitempty"`
}

// Shadowing reports whether merging the image would hide anything.
func (r Report) Shadowing() bool { return len(r.Shadows)+len(r.Overlaps) > 0 }

// Summary says in one line what the image hides, naming at most a few
// paths; "" when nothing.
func (r Report) Summary() string {
	if !r.Shadowing() {
		return ""
	}
	var parts []string
	if n := len(r.Shadows); n > 0 {
		parts = append(parts, fmt.Sprintf("shadows %d file(s) of the base tree (%s)", n, few(r.Shadows)))
	}
	if n := len(r.Overlaps); n > 0 {
		ps := make([]string, n)
		for i, o := range r.Overlaps {
			ps[i] = o.Path + " with " + o.With
		}
		parts = append(parts, fmt.Sprintf("ships %d file(s) another extension ships too (%s)", n, few(ps)))
	}
	return strings.Join(parts, "; ")
}

// Refuse is the error for an entry with allow_shadow = false: nil when
// the image hides nothing.
func (r Report) Refuse(name string) error {
	if !r.Shadowing() {
		return nil
	}
	return fmt.Errorf("%s: %s, and its manifest entry says allow_shadow = false", name, r.Summary())
}

func few(ps []string) string {
	const n = 3
	if len(ps) <= n {
		return strings.Join(ps, ", ")
	}
	return strings.Join(ps[:n], ", ") + fmt.Sprintf(", and %d more", len(ps)-n)
}

// Check lists imagePath and compares it with the base tree under root and
// with installed (manifest name -> image path, every installed extension).
// An installed image with the same extension-release name as imagePath
// (the version an update replaces) is not an overlap; while it is merged,
// the files it ships are in /usr, so they are not counted as shadowing the
// base. It reads only; ctx bounds it.
func Check(ctx context.Context, root rootfs.Root, imagePath string, installed map[string]string) (Report, error) {
	rep := Report{Image: imagePath, Adds: []string{}, Shadows: []string{}, Overlaps: []Overlap{}}
	entries, selfNames, err := list(ctx, imagePath)
	if err != nil {
		return rep, err
	}
	r, err := root.Open()
	if err != nil {
		return rep, fmt.Errorf("checking %s against %s: %w", imagePath, root.Dir(), err)
	}
	defer r.Close()
	if _, err := r.Lstat(rootfs.InRoot("/usr/.systemd-sysext")); err == nil {
		rep.BaseUnknown = true
	}
	// Paths other extensions ship, to tell overlaps from the base, and
	// paths the replaced version of this one ships.
	others := map[string][]Overlap{}
	previous := map[string]bool{}
	names := make([]string, 0, len(installed))
	for n := range installed {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := installed[n]
		oe, on, err := list(ctx, p)
		if err != nil {
			return rep, fmt.Errorf("listing installed extension %s: %w", n, err)
		}
		if same(p, imagePath) || overlapping(on, selfNames) {
			for _, e := range oe {
				previous[e.Path] = !e.Dir
			}
			continue
		}
		wins := lastName(selfNames, on)
		for _, e := range oe {
			if !e.Dir {
				others[e.Path] = append(others[e.Path], Overlap{Path: e.Path, With: n, Wins: wins})
			}
		}
	}
	for _, e := range entries {
		if e.Dir {
			continue
		}
		rep.Adds = append(rep.Adds, e.Path)
		with := others[e.Path]
		rep.Overlaps = append(rep.Overlaps, with...)
		if rep.BaseUnknown && (len(with) > 0 || previous[e.Path]) {
			continue
		}
		if _, err := r.Lstat(rootfs.InRoot(e.Path)); err == nil {
			rep.Shadows = append(rep.Shadows, e.Path)
		}
	}
	return rep, nil
}

func same(a, b string) bool {
	if a == b {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// List returns every entry of a squashfs image under usr/ and opt/
// (directories included, the image's own extension-release files not),
// sorted by path. It is bounded by MaxEntries, ListTimeout and ctx.
func List(ctx context.Context, imagePath string) ([]Entry, error) {
	out, _, err := list(ctx, imagePath)
	return out, err
}

// overlapping reports whether a and b share a name.
func overlapping(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// lastName is the image name that sorts last of a's first and b's first:
// the one systemd-sysext stacks on top.
func lastName(a, b []string) string {
	var x, y string
	if len(a) > 0 {
		x = a[0]
	}
	if len(b) > 0 {
		y = b[0]
	}
	return max(x, y)
}

// list is List plus the names of the image's extension-release files.
func list(ctx context.Context, imagePath string) (out []Entry, names []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, ListTimeout)
	defer cancel()
	f, err := os.Open(imagePath)
	if err != nil {
		return nil, nil, fmt.Errorf("listing %s: %w", imagePath, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("listing %s: %w", imagePath, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("listing %s: not a regular file", imagePath)
	}
	var sb [96]byte
	if _, err := f.ReadAt(sb[:], 0); err != nil || string(sb[:4]) != "hsqs" {
		return nil, nil, fmt.Errorf("listing %s: not a squashfs image (the shadowing check reads squashfs only)", imagePath)
	}
	if used := binary.LittleEndian.Uint64(sb[40:48]); used > uint64(fi.Size()) {
		return nil, nil, fmt.Errorf("listing %s: truncated: the superblock says %d bytes, the file has %d", imagePath, used, fi.Size())
	}
	defer func() {
		// go-diskfs panics on some damaged images.
		if p := recover(); p != nil {
			out, names, err = nil, nil, fmt.Errorf("listing %s: damaged image: %v", imagePath, p)
		}
	}()
	fsys, err := squashfs.Read(file.New(f, true), fi.Size(), 0, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("listing %s: %w", imagePath, err)
	}
	defer fsys.Close()
	seen := 0
	var walk func(dir string) error
	walk = func(dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		des, err := fsys.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("reading %s: %w", dir, err)
		}
		for _, de := range des {
			if seen++; seen > MaxEntries {
				return fmt.Errorf("%w: more than %d", ErrTooLarge, MaxEntries)
			}
			name := de.Name()
			if err := image.CheckName(dir, name); err != nil {
				return err
			}
			p := path.Join(dir, name)
			if dir == "." && name != "usr" && name != "opt" {
				continue
			}
			if path.Dir(p) == "usr/lib/extension-release.d" && strings.HasPrefix(name, "extension-release.") {
				names = append(names, strings.TrimPrefix(name, "extension-release."))
				continue
			}
			isDir := de.Type()&fs.ModeDir != 0
			out = append(out, Entry{Path: "/" + p, Dir: isDir})
			if isDir {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		return nil, nil, fmt.Errorf("listing %s: %w", imagePath, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	sort.Strings(names)
	return out, names, nil
}

// Installed maps every extension state.json records, whose image is in
// the store, to its image path: the installed argument of Check.
func Installed(s store.Store) (map[string]string, error) {
	st, err := s.LoadState()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for n, rec := range st.Extensions {
		p := s.ImagePath(rec.Image)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			out[n] = p
		}
	}
	return out, nil
}
