package image

import (
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// Discoverable Partitions Specification type UUIDs of the root and usr
// partitions, by Go architecture.
var (
	rootPartType = map[string]string{
		"amd64": "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "arm64": "b921b045-1df0-41c3-af44-4c6f280d3fae",
		"386": "44479540-f297-41b2-9af7-d131d5f0458a", "arm": "69dad710-2ce4-4e3c-b16c-21a1d49abed3",
		"riscv64": "72ec70a6-cf74-40e6-bd49-4bda08e8f224", "s390x": "5eead9a9-fe09-4a1e-a1d7-520d00531306",
		"ppc64le": "c31c45e6-3f39-412e-80fb-4809c4980599",
	}
	usrPartType = map[string]string{
		"amd64": "8484680c-9521-48c6-9c11-b0720656f69e", "arm64": "b0e01050-ee5f-4390-949a-9101b17104e9",
		"386": "75250d76-8cc6-458e-bd66-bd47cc81a812", "arm": "7d0359a3-02b3-4f0a-865c-654403e70625",
		"riscv64": "beaec34b-8442-439b-a40b-984381ed097d", "s390x": "b325bfbe-c7be-4ab8-8357-139e652d2f6b",
		"ppc64le": "15bb03af-77e7-4d4a-b12b-c0d084f7491c",
	}
)

// RootPartitionType and UsrPartitionType are the GPT type UUIDs systemd
// looks for on this architecture ("" when unknown).
func RootPartitionType() string { return rootPartType[runtime.GOARCH] }

// UsrPartitionType: see RootPartitionType.
func UsrPartitionType() string { return usrPartType[runtime.GOARCH] }

// openGPT reads a GPT disk image's usr partition (seen at /usr) or, when
// there is none, its root partition, for the running architecture, with
// go-diskfs; verity partitions are not checked. The partition must hold a
// squashfs (not lzma) or an uncompressed erofs, else the caller falls back
// to systemd-dissect.
func openGPT(f *os.File, info *Info) (tree, error) {
	tbl, err := gpt.Read(file.New(f, true), 512, 512)
	if err != nil {
		return nil, fmt.Errorf("%w: GPT: %v", ErrCorrupt, err)
	}
	var usr, root *gpt.Partition
	for _, p := range tbl.Partitions {
		switch strings.ToLower(string(p.Type)) {
		case UsrPartitionType():
			usr = p
		case RootPartitionType():
			root = p
		}
	}
	part, underUsr := usr, true
	if part == nil {
		part, underUsr = root, false
	}
	if part == nil {
		return nil, fmt.Errorf("%w: GPT has no root or usr partition for %s", ErrCorrupt, runtime.GOARCH)
	}
	start := int64(part.Start) * 512
	size := int64(part.Size)
	if size == 0 {
		size = int64(part.End-part.Start+1) * 512
	}
	if start+size > info.Size {
		return nil, fmt.Errorf("%w: GPT partition %d runs past the end of the file", ErrCorrupt, part.Index)
	}
	head := make([]byte, 2048)
	if _, err := f.ReadAt(head, start); err != nil {
		return nil, fmt.Errorf("%w: GPT partition %d: %v", ErrCorrupt, part.Index, err)
	}
	var inner tree
	switch {
	case string(head[:4]) == "hsqs" && squashfsCompression(head) != "lzma":
		info.Compression = squashfsCompression(head)
		fsys, err := squashfs.Read(file.New(f, true), size, start, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: GPT partition %d: %v", ErrCorrupt, part.Index, err)
		}
		inner = &squashfsTree{fsys: fsys, f: f}
	case leUint32(head[1024:1028]) == 0xE0F5E1E2:
		t, err := openErofsAt(f, start, size)
		if err != nil {
			return nil, err
		}
		inner = t
	default:
		return nil, fmt.Errorf("%w: GPT partition %d: no squashfs or uncompressed erofs", ErrCorrupt, part.Index)
	}
	if underUsr {
		return usrTree{inner}, nil
	}
	return inner, nil
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// usrTree shows a usr partition's file system at /usr of an otherwise
// empty root, as systemd mounts it.
type usrTree struct{ inner tree }

func (u usrTree) map_(p string) (string, bool) {
	p = path.Clean(p)
	if p == "usr" {
		return ".", true
	}
	rest, ok := strings.CutPrefix(p, "usr/")
	return rest, ok
}

func (u usrTree) lstat(p string) (iofs.FileInfo, error) {
	if c := path.Clean(p); c == "." || c == "" {
		return synthDir("."), nil
	}
	in, ok := u.map_(p)
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, iofs.ErrNotExist)
	}
	return u.inner.lstat(in)
}

func (u usrTree) readDir(p string) ([]iofs.DirEntry, error) {
	if c := path.Clean(p); c == "." || c == "" {
		return []iofs.DirEntry{iofs.FileInfoToDirEntry(synthDir("usr"))}, nil
	}
	in, ok := u.map_(p)
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, iofs.ErrNotExist)
	}
	return u.inner.readDir(in)
}

func (u usrTree) readlink(p string) (string, error) {
	in, ok := u.map_(p)
	if !ok {
		return "", fmt.Errorf("%s: %w", p, iofs.ErrNotExist)
	}
	return u.inner.readlink(in)
}

func (u usrTree) xattr(p, name string) (string, bool, error) {
	in, ok := u.map_(p)
	if !ok {
		return "", false, fmt.Errorf("%s: %w", p, iofs.ErrNotExist)
	}
	return u.inner.xattr(in, name)
}

func (u usrTree) open(p string, e iofs.DirEntry) (io.ReadCloser, error) {
	in, ok := u.map_(p)
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, iofs.ErrNotExist)
	}
	return u.inner.open(in, e)
}

func (u usrTree) close() error { return u.inner.close() }

type synthDir string

func (d synthDir) Name() string        { return string(d) }
func (d synthDir) Size() int64         { return 0 }
func (d synthDir) Mode() iofs.FileMode { return iofs.ModeDir | 0o755 }
func (d synthDir) ModTime() time.Time  { return time.Time{} }
func (d synthDir) IsDir() bool         { return true }
func (d synthDir) Sys() any            { return nil }
