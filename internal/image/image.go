// Package image reads a system-extension image and checks it against the
// host the way systemd-sysext 257 would (SPEC §7, docs/extension-release.md):
// the extension-release file systemd would pick, its ID, ID_LIKE, VERSION_ID
// or SYSEXT_LEVEL, ARCHITECTURE and SYSEXT_SCOPE, the files systemd refuses,
// the top-level layout, and the units the image ships.
//
// Formats: squashfs (gzip, xz, zstd, lzo, lz4 read by go-diskfs, lz4 with
// the patch in third_party/go-diskfs), uncompressed erofs (go-erofs). What no
// library here reads — compressed erofs, GPT disk images with a root or usr partition — is mounted
// read-only with systemd-dissect (root only). lzma squashfs is refused: the
// kernel cannot mount it. Garbage or truncated files give an error wrapping
// ErrCorrupt, never a panic.
//
// Reading is bounded: every loop checks the context, and the number of
// entries listed and bytes read are capped (MaxEntries, MaxReadTotal).
package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spamtagger/sysextd/internal/osrelease"
)

// maxEntries is MaxEntries, lowered by tests.
var maxEntries = MaxEntries

// Locations inside an image, without a leading "/".
const (
	ReleaseDir = "usr/lib/extension-release.d"
	UnitDir    = "usr/lib/systemd/system"
	OSRelease  = "usr/lib/os-release"
)

// StrictXattr is the extended attribute that lets an extension-release file
// with another name stand in for the image's own (os-release(5)).
const StrictXattr = "user.extension-release.strict"

// Limits on what one Inspect reads.
const (
	// MaxReadSize caps one file read by ReadFile.
	MaxReadSize = 8 << 20
	// MaxEntries caps the entries of one directory Inspect lists.
	MaxEntries = 20000
	// MaxReadTotal caps the bytes of file content one Inspect reads.
	MaxReadTotal = 64 << 20
	// maxReleaseSize caps the extension-release file (systemd reads up to
	// 64 MiB; a bigger one is refused here, bounded by MaxReadTotal anyway).
	maxReleaseSize = MaxReadSize
	// maxUnitSize caps a unit file: a bigger one is refused (systemd
	// reads a unit line by line and refuses a line over maxUnitLine; a
	// real unit is a few KiB, a huge one only costs every reader).
	maxUnitSize = 4 << 20
	// maxUnitLine is systemd's LONG_LINE_MAX, the longest line
	// config_parse() accepts in a unit file.
	maxUnitLine = 1 << 20
	// maxReleaseFiles caps the extension-release.* files read.
	maxReleaseFiles = 64
)

var (
	// ErrCorrupt: the file is not a readable image, or is truncated or damaged.
	ErrCorrupt = errors.New("not a readable squashfs, erofs or GPT image")
	// ErrUnsupportedCompression: the image uses a compressor the kernel
	// cannot mount (lzma squashfs).
	ErrUnsupportedCompression = errors.New("unsupported squashfs compression")
	// ErrTooLarge: the image exceeds an inspection limit.
	ErrTooLarge = errors.New("image exceeds an inspection limit")
	// ErrUnitTooLarge: a unit file systemd would not load.
	ErrUnitTooLarge = errors.New("unit file too large")
)

// Release is one usr/lib/extension-release.d/extension-release.* entry.
type Release struct {
	Name    string // the part after "extension-release."
	Symlink bool   // the entry is a symlink (resolved inside the image)
	// Regular: the entry, symlinks followed inside the image, is a
	// regular file. Missing: a dangling symlink.
	Regular, Missing bool
	// Strict is the user.extension-release.strict xattr of the entry
	// itself; StrictSet says it is present.
	Strict    string
	StrictSet bool
	// Fields is the parsed file (nil unless Regular and parsed); ParseErr
	// is why it could not be parsed (invalid UTF-8: systemd refuses it).
	Fields   map[string]string
	ParseErr error
}

// Info is what Inspect learns from an image.
type Info struct {
	Path string // the image file
	// Display names the image in messages: the release asset, not the
	// staging file. Defaults to the file's base name.
	Display string
	// Format is "squashfs", "erofs" or "gpt"; Reader is the library or
	// tool that read it: "go-diskfs", "go-erofs" or "systemd-dissect".
	Format, Reader string
	// Compression is the squashfs compressor: gzip, lzo, xz, lz4, zstd.
	Compression string
	Size        int64 // file size in bytes
	// Releases lists every extension-release.* entry, sorted by name.
	Releases []Release
	// ReleaseNames lists Releases' names, sorted.
	ReleaseNames []string
	// Name and Fields are the extension-release file systemd picks: set
	// by Inspect when there is exactly one, and by Validate for its name.
	Name   string
	Fields map[string]string
	// HasOSRelease: the image carries usr/lib/os-release (symlinks
	// followed inside the image), which systemd refuses.
	HasOSRelease bool
	// TopLevel lists the image's top-level entries, sorted.
	TopLevel []string
	// Units lists the unit files directly in usr/lib/systemd/system whose
	// [Install] section has WantedBy=, RequiredBy=, UpheldBy=, Alias= or
	// Also= (what a package postinst would enable), sorted. Template units
	// ("foo@.service") and symlinks are left out.
	Units []string
	// UnitFiles lists every unit file name directly in
	// usr/lib/systemd/system (templates and symlinks included), sorted:
	// what an update action from the image may name (docs/trust.md).
	UnitFiles []string
	// UnitDirs lists the directories directly in usr/lib/systemd/system
	// ("nginx.service.d", "multi-user.target.wants"), sorted: drop-ins and
	// dependencies for units the image may not ship itself.
	UnitDirs []string
	// UnitLinks lists the symlinks among UnitFiles (aliases and masks),
	// sorted.
	UnitLinks []string
	// ManagerDirs lists the other places in the image that change what the
	// service manager loads (ManagerDirs below) and that the image has.
	ManagerDirs []string
}

// ManagerDirs are the locations besides UnitDir where an image can change
// what systemd loads: units under /usr/local, generators, and the
// manager's own configuration. Only a daemon-reload takes them in.
var ManagerDirs = []string{
	"usr/local/lib/systemd/system",
	"usr/lib/systemd/system-generators",
	"usr/lib/systemd/system-environment-generators",
	"usr/lib/systemd/system.conf.d",
}

// Inspect is InspectContext without a deadline or display name.
func Inspect(p string) (*Info, error) {
	return InspectContext(context.Background(), p)
}

// InspectContext reads the image at p, naming it by its base name.
func InspectContext(ctx context.Context, p string) (*Info, error) {
	return InspectNamed(ctx, p, filepath.Base(p))
}

// InspectNamed reads the image at p; display names it in errors and in
// Validate's messages (pass the release asset's file name for a staged
// download). An error wraps ErrCorrupt when the file is not a readable
// image, ErrUnsupportedCompression for lzma, ErrTooLarge past a limit,
// ErrNeedsDissect when the format needs systemd-dissect and it cannot run,
// ctx.Err() when cancelled, or the os error when it cannot be opened. What
// is wrong with the extension-release file is not an error here: Validate
// reports it.
func InspectNamed(ctx context.Context, p, display string) (*Info, error) {
	info, err := inspect(ctx, p, display)
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", display, err)
	}
	return info, nil
}

func inspect(ctx context.Context, p, display string) (*Info, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: not a regular file", ErrCorrupt)
	}
	info := &Info{Path: p, Display: display, Size: st.Size()}
	head := make([]byte, 8192)
	n, _ := io.ReadFull(f, head)
	head = head[:n]

	switch {
	case len(head) >= 96 && string(head[:4]) == "hsqs":
		info.Format, info.Compression = "squashfs", squashfsCompression(head)
		if used := binary.LittleEndian.Uint64(head[40:48]); used > uint64(info.Size) {
			f.Close()
			return nil, fmt.Errorf("%w: truncated, superblock says %d bytes, file has %d", ErrCorrupt, used, info.Size)
		}
		switch info.Compression {
		case "lzma":
			f.Close()
			return nil, fmt.Errorf("%w: lzma (legacy; the kernel cannot mount it, rebuild with xz or zstd)", ErrUnsupportedCompression)
		}
		info.Reader = "go-diskfs"
		err = info.readTree(ctx, f, func() (tree, error) { return openSquashfs(f, info.Size) })
		if err == nil || ctx.Err() != nil || !errors.Is(err, ErrCorrupt) {
			return info, err
		}
		// go-diskfs misreads some images the kernel mounts (xz with a BCJ
		// filter): the kernel has the last word.
		return retryDissected(ctx, p, display, info, err)
	case len(head) >= 1028 && binary.LittleEndian.Uint32(head[1024:1028]) == 0xE0F5E1E2:
		info.Format, info.Reader = "erofs", "go-erofs"
		err = info.readTree(ctx, f, func() (tree, error) { return openErofs(f) })
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrTooLarge) {
			return info, err
		}
		// go-erofs reads uncompressed images only: let the kernel try.
		return retryDissected(ctx, p, display, info, err)
	case isGPT(head):
		info.Format, info.Reader = "gpt", "go-diskfs"
		err = info.readTree(ctx, f, func() (tree, error) { return openGPT(f, info) })
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrTooLarge) {
			return info, err
		}
		// lz4 or compressed erofs inside, verity, 4K sectors: the kernel.
		return retryDissected(ctx, p, display, info, err)
	default:
		f.Close()
		if len(head) < 96 {
			return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, info.Size)
		}
		return nil, fmt.Errorf("%w: bad magic %q", ErrCorrupt, head[:4])
	}
}

func isGPT(head []byte) bool {
	for _, off := range []int{512, 4096} {
		if len(head) >= off+8 && string(head[off:off+8]) == "EFI PART" {
			return true
		}
	}
	return false
}

// retryDissected reads the image with systemd-dissect after a library
// failed with libErr; when systemd-dissect cannot run, libErr stands.
func retryDissected(ctx context.Context, p, display string, failed *Info, libErr error) (*Info, error) {
	fresh := &Info{Path: p, Display: display, Size: failed.Size, Format: failed.Format, Compression: failed.Compression}
	info, err := inspectDissected(ctx, fresh, failed.Format)
	switch {
	case err == nil:
		return info, nil
	case errors.Is(err, ErrNeedsDissect):
		return nil, libErr
	}
	return nil, fmt.Errorf("%v; %s: %w", err, failed.Reader, libErr)
}

func inspectDissected(ctx context.Context, info *Info, what string) (*Info, error) {
	t, err := openDissect(ctx, info.Path, what)
	if err != nil {
		return nil, err
	}
	info.Reader = "systemd-dissect"
	err = info.read(ctx, t)
	if cerr := t.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return info, nil
}

// readTree reads info from the tree open makes of f; f is the tree's to
// close, or closed here when open fails.
func (info *Info) readTree(ctx context.Context, f *os.File, open func() (tree, error)) error {
	t, err := open()
	if err != nil {
		f.Close()
		return err
	}
	defer t.close()
	return info.read(ctx, t)
}

func (info *Info) read(ctx context.Context, t tree) error {
	r := &reader{ctx: ctx, t: t, left: MaxReadTotal}
	top, err := r.readDir(".")
	if err != nil {
		return err
	}
	for _, e := range top {
		info.TopLevel = append(info.TopLevel, e.Name())
	}
	sort.Strings(info.TopLevel)

	if err := info.readReleases(r); err != nil {
		return err
	}
	_, _, err = chase(ctx, t, OSRelease)
	switch {
	case err == nil:
		info.HasOSRelease = true
	case isNotExist(err):
	default:
		return err
	}
	return info.readUnits(r)
}

func (info *Info) readReleases(r *reader) error {
	entries, dir, err := r.chaseDir(ReleaseDir)
	if err != nil || entries == nil {
		return err
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), "extension-release.")
		if !ok || name == "" {
			continue
		}
		if len(info.Releases) == maxReleaseFiles {
			return fmt.Errorf("%w: more than %d extension-release files", ErrTooLarge, maxReleaseFiles)
		}
		p := path.Join(dir, e.Name())
		rel := Release{Name: name, Symlink: e.Type()&iofs.ModeSymlink != 0}
		if v, ok, err := r.t.xattr(p, StrictXattr); err == nil {
			rel.Strict, rel.StrictSet = strings.TrimRight(v, "\x00"), ok
		}
		resolved, fi, err := chase(r.ctx, r.t, p)
		switch {
		case isNotExist(err):
			rel.Missing = true
		case err != nil:
			return err
		case fi.Mode().IsRegular():
			rel.Regular = true
			var de iofs.DirEntry
			if !rel.Symlink {
				de = e
			}
			b, err := r.readFile(resolved, de, maxReleaseSize)
			if err != nil {
				return err
			}
			rel.Fields, rel.ParseErr = ParseRelease(bytes.NewReader(b))
		}
		info.Releases = append(info.Releases, rel)
		info.ReleaseNames = append(info.ReleaseNames, name)
	}
	sort.Slice(info.Releases, func(i, j int) bool { return info.Releases[i].Name < info.Releases[j].Name })
	sort.Strings(info.ReleaseNames)
	if len(info.Releases) == 1 && info.Releases[0].Fields != nil {
		info.Name, info.Fields = info.Releases[0].Name, info.Releases[0].Fields
	}
	return nil
}

func (info *Info) readUnits(r *reader) error {
	entries, dir, err := r.chaseDir(UnitDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		link := e.Type()&iofs.ModeSymlink != 0
		if isUnitName(e.Name()) && (e.Type().IsRegular() || link) {
			info.UnitFiles = append(info.UnitFiles, e.Name())
			if link {
				info.UnitLinks = append(info.UnitLinks, e.Name())
			}
		}
		if e.IsDir() {
			info.UnitDirs = append(info.UnitDirs, e.Name())
		}
		if !e.Type().IsRegular() || !isEnableableUnitName(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Size() > maxUnitSize {
			return fmt.Errorf("%w: %s/%s is %d bytes: systemd refuses a unit line over %d bytes, and no unit file needs more than %d",
				ErrUnitTooLarge, UnitDir, e.Name(), fi.Size(), maxUnitLine, maxUnitSize)
		}
		b, err := r.readFile(path.Join(dir, e.Name()), e, maxUnitSize)
		if err != nil {
			return err
		}
		if err := checkUnitLines(b); err != nil {
			return fmt.Errorf("%w: %s/%s: %v", ErrUnitTooLarge, UnitDir, e.Name(), err)
		}
		if hasInstallTarget(b) {
			info.Units = append(info.Units, e.Name())
		}
	}
	sort.Strings(info.Units)
	sort.Strings(info.UnitFiles)
	sort.Strings(info.UnitDirs)
	sort.Strings(info.UnitLinks)
	for _, d := range ManagerDirs {
		_, _, err := chase(r.ctx, r.t, d)
		if cerr := r.ctx.Err(); cerr != nil {
			return cerr
		}
		// Anything there but plain absence (a symlink loop too) counts:
		// it only ever costs a reload.
		if !isNotExist(err) {
			info.ManagerDirs = append(info.ManagerDirs, d)
		}
	}
	return nil
}

// ParseRelease reads an extension-release file with systemd's env-file
// rules (osrelease.Load): the only error is invalid UTF-8, for which
// systemd refuses the whole file.
func ParseRelease(rd io.Reader) (map[string]string, error) {
	b, err := readAllCapped(rd, maxReleaseSize)
	if err != nil {
		return nil, err
	}
	return osrelease.Load(b)
}
