package debian

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"pault.ag/go/debian/deb"
)

// Entry is one path of an unpacked tree with the owner and mode its
// package declares (the file on disk is owned by whoever ran the build).
type Entry struct {
	Path    string // relative, merged-/usr: "usr/bin/hello"
	Type    byte   // tar.TypeReg, TypeDir, TypeSymlink or TypeLink
	Mode    int64  // permission bits with setuid, setgid and sticky
	UID     int
	GID     int
	Package string
	Link    string // symlink target, or hard link target path
}

// Tree is a directory that .deb data is unpacked into, with every entry's
// declared metadata. Only usr/, opt/ and etc/ are kept (systemd-sysext
// merges usr/ and opt/; etc/ is carried for the manager to install like
// conffiles); /bin, /sbin and /lib* are folded into usr/ as on a merged-/usr
// root. Everything else (var/, srv/, boot/) is listed in Dropped.
type Tree struct {
	root    *os.Root
	Dir     string
	Entries map[string]*Entry
	// Dropped lists "package: path" of what was left out.
	Dropped []string
	// Users and Groups map names to ids for owners other than root (read
	// from the base's etc/passwd and etc/group); unknown names keep the
	// numeric id of the archive.
	Users, Groups map[string]int
}

// NewTree opens dir (which must exist) as a tree.
func NewTree(dir string) (*Tree, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Tree{root: r, Dir: dir, Entries: map[string]*Entry{}}, nil
}

// Close releases the directory handle.
func (t *Tree) Close() error { return t.root.Close() }

// MaintScripts describes the maintainer scripts of a package, which are
// never run for an extension.
type MaintScripts struct {
	Package string
	Scripts []string // preinst, postinst, ... present
	// Actions are the things its postinst does that an image cannot
	// carry (users, alternatives, enabled units, capabilities ...).
	Actions []string
}

// Unpack extracts the data of the .deb at path, owned by package pkg, into
// the tree and reports its maintainer scripts.
func (t *Tree) Unpack(path, pkg string) (*MaintScripts, error) {
	d, closeDeb, err := deb.LoadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s (%s): %w", path, pkg, err)
	}
	defer closeDeb()
	ms, err := maintScripts(d, pkg)
	if err != nil {
		return nil, fmt.Errorf("reading control of %s: %w", pkg, err)
	}
	for {
		h, err := d.Data.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading data of %s: %w", pkg, err)
		}
		if err := t.add(h, d.Data, pkg); err != nil {
			return nil, fmt.Errorf("unpacking %s: %s: %w", pkg, h.Name, err)
		}
	}
	return ms, nil
}

// MergedUsr returns the tar path p relative to / with /bin, /sbin and
// /lib* folded into usr/, or "" for the root itself. ok is false for a
// path that leaves the root.
func MergedUsr(p string) (rel string, ok bool) {
	if strings.Contains("/"+p+"/", "/../") {
		return "", false
	}
	rel = strings.TrimPrefix(path.Clean("/"+p), "/")
	first, _, _ := strings.Cut(rel, "/")
	switch first {
	case "bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32":
		rel = "usr/" + rel
	}
	return rel, true
}

// kept reports whether rel belongs in an image.
func kept(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	return first == "usr" || first == "opt" || first == "etc"
}

func (t *Tree) add(h *tar.Header, r io.Reader, pkg string) error {
	rel, ok := MergedUsr(h.Name)
	if !ok {
		return fmt.Errorf("path leaves the root")
	}
	if rel == "" || rel == "." {
		return nil
	}
	if !kept(rel) {
		if h.Typeflag != tar.TypeDir {
			t.Dropped = append(t.Dropped, pkg+": /"+rel)
		}
		return nil
	}
	e := &Entry{Path: rel, Type: h.Typeflag, Mode: h.Mode & 0o7777, Package: pkg,
		UID: t.id(t.Users, h.Uname, h.Uid), GID: t.id(t.Groups, h.Gname, h.Gid)}
	if err := t.root.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := t.root.MkdirAll(rel, 0o755); err != nil {
			return err
		}
		if old, ok := t.Entries[rel]; ok && old.Type == tar.TypeDir {
			return nil // first package to ship a directory sets its mode
		}
	case tar.TypeReg:
		e.Type = tar.TypeReg
		t.root.Remove(rel)
		f, err := t.root.OpenFile(rel, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := t.root.Chtimes(rel, h.ModTime, h.ModTime); err != nil {
			return err
		}
	case tar.TypeSymlink:
		e.Link = h.Linkname
		t.root.Remove(rel)
		if err := t.root.Symlink(h.Linkname, rel); err != nil {
			return err
		}
	case tar.TypeLink:
		target, ok := MergedUsr(h.Linkname)
		if !ok {
			return fmt.Errorf("hard link target %s leaves the root", h.Linkname)
		}
		e.Link = target
		t.root.Remove(rel)
		if err := t.root.Link(target, rel); err != nil {
			return err
		}
	default:
		t.Dropped = append(t.Dropped, fmt.Sprintf("%s: /%s (tar type %q)", pkg, rel, h.Typeflag))
		return nil
	}
	t.Entries[rel] = e
	return nil
}

func (t *Tree) id(names map[string]int, name string, fallback int) int {
	if name == "root" {
		return 0
	}
	if id, ok := names[name]; ok {
		return id
	}
	return fallback
}

// Sorted returns the entries ordered by path.
func (t *Tree) Sorted() []*Entry {
	out := make([]*Entry, 0, len(t.Entries))
	for _, e := range t.Entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// ReadIDs reads name -> id from a passwd or group file (name:x:id:...).
// A missing file gives an empty map.
func ReadIDs(file string) (map[string]int, error) {
	out := map[string]int{}
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) < 3 {
			continue
		}
		if id, err := strconv.Atoi(parts[2]); err == nil {
			out[parts[0]] = id
		}
	}
	return out, sc.Err()
}

// postinstActions maps what a maintainer script line may do to a
// description for the build report.
var postinstActions = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`\b(adduser|useradd|addgroup|groupadd|systemd-sysusers)\b`), "creates system users or groups"},
	{regexp.MustCompile(`\b(deb-systemd-helper|systemctl)\b.*\b(enable|unmask)\b`), "enables systemd units"},
	{regexp.MustCompile(`\bupdate-alternatives\b.*--install`), "registers alternatives (their symlinks are not in the image)"},
	{regexp.MustCompile(`\bsetcap\b`), "sets file capabilities"},
	{regexp.MustCompile(`\b(dpkg-statoverride|chown|chgrp)\b`), "changes file owners"},
	{regexp.MustCompile(`\bchmod\b`), "changes file modes"},
	{regexp.MustCompile(`\bupdate-rc\.d\b`), "registers SysV init scripts"},
	{regexp.MustCompile(`\b(db_get|db_input|ucf|ucfr)\b`), "manages configuration (debconf or ucf)"},
	{regexp.MustCompile(`\bsystemd-tmpfiles\b`), "creates tmpfiles.d entries"},
	{regexp.MustCompile(`\bupdate-initramfs\b`), "updates the initramfs"},
	{regexp.MustCompile(`\bdepmod\b`), "runs depmod for kernel modules"},
	{regexp.MustCompile(`\budevadm\b`), "reloads udev rules"},
	{regexp.MustCompile(`\bdpkg-trigger\b`), "activates dpkg triggers"},
}

func maintScripts(d *deb.Deb, pkg string) (*MaintScripts, error) {
	ms := &MaintScripts{Package: pkg}
	var ctl *deb.ArEntry
	for name, e := range d.ArContent {
		if strings.HasPrefix(name, "control.tar") {
			ctl = e
		}
	}
	if ctl == nil {
		return ms, nil
	}
	// deb.Load read the control member already.
	if _, err := ctl.Data.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr, closer, err := ctl.Tarfile()
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := path.Base(h.Name)
		switch name {
		case "preinst", "postinst", "prerm", "postrm", "config":
			ms.Scripts = append(ms.Scripts, name)
		case "triggers":
			sc := bufio.NewScanner(io.LimitReader(tr, 1<<20))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 && strings.HasPrefix(f[0], "interest") {
					ms.Actions = append(ms.Actions, "regenerates data when "+f[1]+" changes (a dpkg trigger; what it generates is not in the image)")
				}
			}
			continue
		default:
			continue
		}
		if name != "postinst" && name != "preinst" {
			continue
		}
		sc := bufio.NewScanner(io.LimitReader(tr, 4<<20))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "#") {
				continue
			}
			for _, a := range postinstActions {
				if !seen[a.what] && a.re.MatchString(line) {
					seen[a.what] = true
					ms.Actions = append(ms.Actions, a.what)
				}
			}
		}
	}
	sort.Strings(ms.Scripts)
	return ms, nil
}
