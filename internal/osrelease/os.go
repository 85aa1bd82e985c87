package osrelease

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// OS is a tree's OS identity: the os-release fields systemd-sysext and
// the tools match extensions against. The host's facts, the images'
// compatibility checks, the deployment staged for the next boot and the
// builder's base all use this one type, read by ReadOS.
type OS struct {
	ID              string `json:"id"`
	IDLike          string `json:"id_like,omitempty"` // blank-separated; systemd-sysext matches an image's ID against it
	VersionID       string `json:"version_id"`
	VersionCodename string `json:"version_codename"`
	SysextLevel     string `json:"sysext_level,omitempty"`
}

// FromFields picks the OS identity out of parsed os-release fields.
func FromFields(kv map[string]string) OS {
	return OS{ID: kv["ID"], IDLike: kv["ID_LIKE"], VersionID: kv["VERSION_ID"], VersionCodename: kv["VERSION_CODENAME"], SysextLevel: kv["SYSEXT_LEVEL"]}
}

// maxSize bounds what is read of an os-release file: real ones are well
// under a kilobyte.
const maxSize = 64 << 10

// maxLinks bounds the symlinks followed for one file, as systemd's chase
// does (CHASE_MAX).
const maxLinks = 32

// ReadOS reads the OS identity of the tree r is opened on, the way systemd
// finds it (open_os_release_at): /etc/os-release, and only when that does
// not exist, /usr/lib/os-release; any other error is returned, not passed
// over. Symlinks resolve inside the tree, an absolute one from the tree's
// top, as systemd's chase does under a root. It also returns the in-root
// path it read. With neither file, the error wraps fs.ErrNotExist. Values
// are parsed leniently (Parse): pairs systemd would refuse are dropped.
func ReadOS(r *os.Root) (OS, string, error) {
	for _, p := range []string{rootfs.EtcOSRelease, rootfs.UsrOSRelease} {
		data, err := readInRoot(r, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return OS{}, "", fmt.Errorf("reading %s: %w", p, err)
		}
		return FromFields(Parse(data)), p, nil
	}
	return OS{}, "", fmt.Errorf("no %s or %s: %w", rootfs.EtcOSRelease, rootfs.UsrOSRelease, fs.ErrNotExist)
}

// readInRoot reads the in-root file p, following a symlink at its last
// component inside r (os.Root itself refuses an absolute target).
func readInRoot(r *os.Root, p string) ([]byte, error) {
	for range maxLinks {
		fi, err := r.Lstat(rootfs.InRoot(p))
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		target, err := r.Readlink(rootfs.InRoot(p))
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(target, "/") {
			p = target
		} else {
			p = path.Join(path.Dir(p), target)
		}
	}
	f, err := r.Open(rootfs.InRoot(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxSize))
}
