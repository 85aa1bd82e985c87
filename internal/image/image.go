// Package image reads a squashfs system-extension image without mounting it
// and checks it against the host the way systemd-sysext would (SPEC §7):
// the extension-release file, its ID, VERSION_ID or SYSEXT_LEVEL and
// architecture, the top-level layout, and the units it ships.
//
// Reading uses go-diskfs, which handles gzip, xz, zstd, lzo and lzma
// images; lz4 images are refused with ErrUnsupportedCompression. Garbage or
// truncated files give an error wrapping ErrCorrupt, never a panic.
package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// Locations inside an image, without a leading "/" (go-diskfs paths).
const (
	ReleaseDir = "usr/lib/extension-release.d"
	UnitDir    = "usr/lib/systemd/system"
)

// MaxReadSize caps what ReadFile returns; larger files are an error.
const MaxReadSize = 8 << 20

// maxReleaseSize caps the extension-release file and each unit file read.
const maxReleaseSize = 256 << 10

var (
	// ErrCorrupt: the file is not a squashfs image, or is truncated or damaged.
	ErrCorrupt = errors.New("not a readable squashfs image")
	// ErrUnsupportedCompression: the image uses a compressor that cannot be
	// read without mounting (lz4).
	ErrUnsupportedCompression = errors.New("unsupported squashfs compression")
)

// Info is what Inspect learns from an image.
type Info struct {
	Path string // the image file
	// Name is <NAME> of usr/lib/extension-release.d/extension-release.<NAME>
	// when the image has exactly one such file, else "".
	Name string
	// ReleaseNames lists the <NAME>s of every extension-release.* file, sorted.
	ReleaseNames []string
	// Fields is the parsed extension-release file (nil unless Name is set).
	Fields map[string]string
	// TopLevel lists the image's top-level entries, sorted.
	TopLevel []string
	// Units lists the unit files directly in usr/lib/systemd/system whose
	// [Install] section has WantedBy=, RequiredBy=, UpheldBy=, Alias= or
	// Also= (what a package postinst would enable), sorted. Template units
	// ("foo@.service") and symlinks are left out.
	Units []string
	// Compression is the squashfs compressor: gzip, lzma, lzo, xz, lz4, zstd.
	Compression string
	Size        int64 // file size in bytes
}

// Inspect reads the image at p. An error wraps ErrCorrupt when the file is
// not a readable squashfs image, ErrUnsupportedCompression for lz4, or the
// os error when it cannot be opened. A missing or duplicated
// extension-release file is not an Inspect error: Validate reports it.
func Inspect(p string) (info *Info, err error) {
	fsys, size, comp, closeFn, err := open(p)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	defer recoverCorrupt(p, &err)

	info = &Info{Path: p, Size: size, Compression: comp}
	root, err := fsys.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w: %v", p, ErrCorrupt, err)
	}
	for _, e := range root {
		info.TopLevel = append(info.TopLevel, e.Name())
	}
	sort.Strings(info.TopLevel)

	rel, err := readDirIfExists(fsys, ReleaseDir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	for _, e := range rel {
		if n, ok := strings.CutPrefix(e.Name(), "extension-release."); ok && n != "" && !e.IsDir() {
			info.ReleaseNames = append(info.ReleaseNames, n)
		}
	}
	sort.Strings(info.ReleaseNames)
	if len(info.ReleaseNames) == 1 {
		name := info.ReleaseNames[0]
		inImage := ReleaseDir + "/extension-release." + name
		b, err := readCapped(fsys, inImage, maxReleaseSize)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %s: %w", p, inImage, err)
		}
		fields, err := ParseRelease(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %s: %w", p, inImage, err)
		}
		info.Name, info.Fields = name, fields
	}

	units, err := readDirIfExists(fsys, UnitDir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	for _, e := range units {
		if !e.Type().IsRegular() || !isEnableableUnitName(e.Name()) {
			continue
		}
		b, err := readCapped(fsys, UnitDir+"/"+e.Name(), maxReleaseSize)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %s/%s: %w", p, UnitDir, e.Name(), err)
		}
		if hasInstallTarget(b) {
			info.Units = append(info.Units, e.Name())
		}
	}
	sort.Strings(info.Units)
	return info, nil
}

// ReadFile returns the content of the regular file inImage (a path inside
// the image, with or without a leading "/") from the image at p. Files
// larger than MaxReadSize are an error.
func ReadFile(p, inImage string) (b []byte, err error) {
	fsys, _, _, closeFn, err := open(p)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	defer recoverCorrupt(p, &err)
	clean := strings.TrimPrefix(path.Clean("/"+inImage), "/")
	if clean == "" {
		return nil, fmt.Errorf("reading %s from %s: not a file", inImage, p)
	}
	b, err = readCapped(fsys, clean, MaxReadSize)
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", inImage, p, err)
	}
	return b, nil
}

// open checks the superblock itself (magic, compressor, declared size
// against the file size) before handing the file to go-diskfs, so that the
// common failures get precise errors.
func open(p string) (fsys *squashfs.FileSystem, size int64, comp string, closeFn func(), err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, "", nil, fmt.Errorf("opening image: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, "", nil, fmt.Errorf("opening image: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, 0, "", nil, fmt.Errorf("opening image %s: %w: not a regular file", p, ErrCorrupt)
	}
	size = st.Size()
	sb := make([]byte, 96)
	if _, err := io.ReadFull(f, sb); err != nil {
		return nil, 0, "", nil, fmt.Errorf("reading %s: %w: %d bytes is too short for a superblock", p, ErrCorrupt, size)
	}
	if string(sb[:4]) != "hsqs" {
		return nil, 0, "", nil, fmt.Errorf("reading %s: %w: bad magic %q", p, ErrCorrupt, sb[:4])
	}
	comp = compressionName(binary.LittleEndian.Uint16(sb[20:22]))
	if comp == "lz4" {
		return nil, 0, "", nil, fmt.Errorf("reading %s: %w: lz4 (rebuild the image with gzip, xz or zstd)", p, ErrUnsupportedCompression)
	}
	if used := binary.LittleEndian.Uint64(sb[40:48]); used > uint64(size) {
		return nil, 0, "", nil, fmt.Errorf("reading %s: %w: truncated, superblock says %d bytes, file has %d", p, ErrCorrupt, used, size)
	}
	defer recoverCorrupt(p, &err)
	fsys, err = squashfs.Read(file.New(f, true), size, 0, 0)
	if err != nil {
		return nil, 0, "", nil, fmt.Errorf("reading %s: %w: %v", p, ErrCorrupt, err)
	}
	return fsys, size, comp, func() { fsys.Close(); f.Close() }, nil
}

// recoverCorrupt turns a panic inside go-diskfs on damaged input into an
// ErrCorrupt error.
func recoverCorrupt(p string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("reading %s: %w: go-diskfs panicked: %v", p, ErrCorrupt, r)
	}
}

func compressionName(id uint16) string {
	switch id {
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
	}
	return fmt.Sprintf("unknown(%d)", id)
}

// readDirIfExists lists dir (slash-separated, relative), or returns nil when
// it, or one of its parents, does not exist or is not a directory. go-diskfs
// does not tell "missing" from "damaged", hence the walk.
func readDirIfExists(fsys *squashfs.FileSystem, dir string) ([]iofs.DirEntry, error) {
	cur := "."
	for _, part := range strings.Split(dir, "/") {
		entries, err := fsys.ReadDir(cur)
		if err != nil {
			return nil, fmt.Errorf("%w: listing %s: %v", ErrCorrupt, cur, err)
		}
		found := false
		for _, e := range entries {
			if e.Name() == part && e.IsDir() {
				found = true
				break
			}
		}
		if !found {
			return nil, nil
		}
		cur = path.Join(cur, part)
	}
	entries, err := fsys.ReadDir(cur)
	if err != nil {
		return nil, fmt.Errorf("%w: listing %s: %v", ErrCorrupt, cur, err)
	}
	return entries, nil
}

// readCapped reads a regular file, refusing files larger than limit.
func readCapped(fsys *squashfs.FileSystem, p string, limit int64) ([]byte, error) {
	st, err := fsys.Stat(p)
	if err != nil {
		var pe *iofs.PathError
		if errors.As(err, &pe) {
			return nil, iofs.ErrNotExist
		}
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("file is %d bytes, limit %d", st.Size(), limit)
	}
	f, err := fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("file exceeds limit %d", limit)
	}
	return b, nil
}
