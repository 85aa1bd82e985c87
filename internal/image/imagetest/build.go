// Package imagetest builds crafted system-extension images for tests: the
// agreement table that internal/image checks by itself and that the e2e
// suite runs through the real systemd-sysext 257 (e2e/agree_test.go).
package imagetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"

	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// File is one entry of an image.
type File struct {
	Path  string            // inside the image, e.g. "usr/bin/x"
	Data  string            // content of a regular file
	Link  string            // symlink target, when not ""
	Dir   bool              // a directory
	Xattr map[string]string // extended attributes of a regular file
}

// Build writes files into a staging tree and makes an image of format
// ("squashfs" with compression comp, "erofs" with comp "" or "lz4", or
// "garbage" / "truncated" for broken files) at out; extra goes to
// mksquashfs or mkfs.erofs.
func Build(ctx context.Context, out, format, comp string, files []File, extra ...string) error {
	stage, err := os.MkdirTemp(filepath.Dir(out), ".stage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := writeTree(stage, files); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	switch format {
	case "", "squashfs", "truncated":
		args := []string{stage, out, "-noappend", "-all-root", "-no-progress", "-quiet"}
		if comp != "" {
			args = append(args, "-comp", comp)
		}
		if err := run(ctx, "mksquashfs", append(args, extra...)...); err != nil {
			return err
		}
		if format == "truncated" {
			st, err := os.Stat(out)
			if err != nil {
				return err
			}
			return os.Truncate(out, st.Size()/2)
		}
		return nil
	case "gpt-usr", "gpt-root":
		inner := out + ".part"
		defer os.Remove(inner)
		src, typ := stage, partType[runtime.GOARCH+"-root"]
		if format == "gpt-usr" {
			src, typ = filepath.Join(stage, "usr"), partType[runtime.GOARCH+"-usr"]
		}
		if err := run(ctx, "mksquashfs", append([]string{src, inner, "-noappend", "-all-root", "-no-progress", "-quiet"}, extra...)...); err != nil {
			return err
		}
		return writeGPT(out, inner, typ)
	case "gpt-verity":
		return repartVerity(ctx, out, stage)
	case "erofs":
		args := []string{"--all-root", "-T0", "--quiet"}
		if comp != "" {
			args = append(args, "-z"+comp)
		}
		return run(ctx, "mkfs.erofs", append(append(args, extra...), out, stage)...)
	case "garbage":
		return os.WriteFile(out, []byte(strings.Repeat("not an image\n", 400)), 0o644)
	}
	return fmt.Errorf("unknown format %q", format)
}

// repartVerity makes a GPT image with a squashfs usr partition and its
// dm-verity hash partition, as systemd-repart builds sysext DDIs.
func repartVerity(ctx context.Context, out, stage string) error {
	defs, err := os.MkdirTemp(filepath.Dir(out), ".repart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(defs)
	files := map[string]string{
		"10-usr.conf":        "[Partition]\nType=usr\nFormat=squashfs\nCopyFiles=" + filepath.Join(stage, "usr") + ":/\nVerity=data\nVerityMatchKey=usr\nMinimize=best\n",
		"20-usr-verity.conf": "[Partition]\nType=usr-verity\nVerity=hash\nVerityMatchKey=usr\nMinimize=best\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(defs, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return run(ctx, "systemd-repart", "--definitions="+defs, "--empty=create", "--size=auto", "--dry-run=no", "--root=/", out)
}

// partType holds the Discoverable Partitions Specification types the
// builder uses (internal/image has the full table; importing it here would
// be a cycle in its tests).
var partType = map[string]string{
	"amd64-root": "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "amd64-usr": "8484680c-9521-48c6-9c11-b0720656f69e",
	"arm64-root": "b921b045-1df0-41c3-af44-4c6f280d3fae", "arm64-usr": "b0e01050-ee5f-4390-949a-9101b17104e9",
}

// writeGPT writes a GPT disk image at out with one partition of type typ
// holding the file system image inner, starting at 1 MiB.
func writeGPT(out, inner, typ string) error {
	data, err := os.ReadFile(inner)
	if err != nil {
		return err
	}
	const start = 2048 // sectors of 512 bytes
	sectors := (int64(len(data)) + 511) / 512
	size := (start + sectors + 2048) * 512
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	tbl := &gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true, Partitions: []*gpt.Partition{{
		Index: 1, Start: start, End: uint64(start + sectors - 1), Type: gpt.Type(strings.ToUpper(typ)), Name: "agree",
	}}}
	w, err := file.New(f, false).Writable()
	if err != nil {
		return err
	}
	if err := tbl.Write(w, size); err != nil {
		return fmt.Errorf("writing GPT: %w", err)
	}
	if _, err := f.WriteAt(data, start*512); err != nil {
		return err
	}
	return f.Close()
}

func writeTree(root string, files []File) error {
	sorted := append([]File(nil), files...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		switch {
		case f.Dir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case f.Link != "":
			if err := os.Symlink(f.Link, p); err != nil {
				return err
			}
		default:
			if err := os.WriteFile(p, []byte(f.Data), 0o644); err != nil {
				return err
			}
			for k, v := range f.Xattr {
				if err := unix.Setxattr(p, k, []byte(v), 0); err != nil {
					return fmt.Errorf("setting %s on %s: %w", k, f.Path, err)
				}
			}
		}
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// Arch returns the running architecture in Debian and systemd names.
func Arch() (deb, systemd string) { return sqfs.HostArch() }
