//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// debMeta describes a cached extension tree built from a Debian package.
type debMeta struct {
	Package  string            `json:"package"`
	Version  string            `json:"version"`
	Packages map[string]string `json:"packages"`
	Files    []string          `json:"files"`
	BuiltAt  time.Time         `json:"built_at"`
	Duration time.Duration     `json:"duration_ns"`
}

// BuildDebExtension builds an extension image from a real Debian package the
// way the sysext template does: install pkg with apt into a copy of base,
// take the files of every package that was not in base (regular files and
// symlinks under usr/ and opt/ only, merged-/usr paths folded into usr/),
// add the extension-release file and mksquashfs the tree.
//
// The apt step is slow, so the file tree is cached under CacheDir() keyed by
// package and base; the image itself is made fresh for every call, which is
// cheap, so opts may differ between calls.
func BuildDebExtension(t testing.TB, base *Base, pkg string, opts ExtOptions) *Built {
	t.Helper()
	requireRoot(t)
	ensureTools(t)
	tree, meta := debTree(t, base, pkg)
	if opts.Dist == nil {
		opts.Dist = &base.Dist
	}
	work := filepath.Join(t.TempDir(), "tree")
	mustRun(t, t.Context(), "cp", "-a", "--reflink=auto", tree, work)
	b := finishImage(t, work, pkg, meta.Version, opts)
	b.Packages = meta.Packages
	return b
}

// debTree returns the cached file tree of pkg over base, building it first
// when the cache has no complete one.
func debTree(t testing.TB, base *Base, pkg string) (string, debMeta) {
	t.Helper()
	return cachedTree(t, base, pkg, "debext", collectPackage)
}

// cachedTree returns the cached tree of pkg over base under the cache's
// subdir, building it first when the cache has no complete one: pkg is
// installed with apt in an overlay, and collect copies each new package's
// files into the tree.
func cachedTree(t testing.TB, base *Base, pkg, subdir string, collect func(upper, stage, name string) ([]string, error)) (string, debMeta) {
	t.Helper()
	top := filepath.Join(CacheDir(), subdir)
	if err := os.MkdirAll(top, 0o755); err != nil {
		t.Fatalf("creating %s: %v", top, err)
	}
	unlock := lockDir(t, top)
	defer unlock()

	final := filepath.Join(top, pkg+"-"+base.Key)
	tree, metaPath := filepath.Join(final, "tree"), filepath.Join(final, "meta.json")
	if data, err := os.ReadFile(metaPath); err == nil {
		var m debMeta
		if err := json.Unmarshal(data, &m); err == nil {
			if _, err := os.Stat(tree); err == nil {
				return tree, m
			}
		}
	}
	if err := os.RemoveAll(final); err != nil {
		t.Fatalf("removing incomplete %s: %v", final, err)
	}
	start := time.Now()
	tmp, err := os.MkdirTemp(top, ".build-"+pkg+"-")
	if err != nil {
		t.Fatalf("creating build dir: %v", err)
	}
	defer os.RemoveAll(tmp)
	upper := aptInstall(t, base, tmp, pkg)

	before := dpkgVersions(t, filepath.Join(base.Dir, "var/lib/dpkg/status"))
	after := dpkgVersions(t, filepath.Join(upper, "var/lib/dpkg/status"))
	m := debMeta{Package: pkg, Version: after[pkg], Packages: map[string]string{}}
	if m.Version == "" {
		t.Fatalf("%s is not installed after apt-get install", pkg)
	}
	var names []string
	for name, v := range after {
		if old, ok := before[name]; !ok {
			m.Packages[name] = v
			names = append(names, name)
		} else if old != v {
			t.Logf("warning: installing %s upgraded base package %s %s -> %s; its files are not in the image", pkg, name, old, v)
		}
	}
	sort.Strings(names)
	stage := filepath.Join(tmp, "tree")
	for _, name := range names {
		files, err := collect(upper, stage, name)
		if err != nil {
			t.Fatalf("collecting files of %s: %v", name, err)
		}
		m.Files = append(m.Files, files...)
	}
	sort.Strings(m.Files)
	m.BuiltAt, m.Duration = time.Now().UTC(), time.Since(start)
	t.Logf("built %s %s tree from %d packages (%d files) in %s", pkg, m.Version, len(names), len(m.Files), m.Duration.Round(time.Second))

	if err := os.Mkdir(final, 0o755); err != nil {
		t.Fatalf("creating %s: %v", final, err)
	}
	if err := os.Rename(stage, tree); err != nil {
		t.Fatalf("moving tree into the cache: %v", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatalf("encoding meta: %v", err)
	}
	if err := writeFileAtomic(metaPath, data, 0o644); err != nil {
		t.Fatalf("writing meta: %v", err)
	}
	return tree, m
}

// aptScript installs $PKG in an overlay over $BASE inside a private mount
// namespace, so that every mount disappears with the process.
const aptScript = `set -eu
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$UPPER,workdir=$WORK" "$MNT"
mount -t proc proc "$MNT/proc"
mount --rbind /sys "$MNT/sys"
mount --rbind /dev "$MNT/dev"
rm -f "$MNT/etc/resolv.conf"
cp -L /etc/resolv.conf "$MNT/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$MNT/usr/sbin/policy-rc.d"
chmod 0755 "$MNT/usr/sbin/policy-rc.d"
# A snapshot or testing archive can be past its Valid-Until (forky): the
# e2e builds trees to test with, not to ship.
echo "deb $MIRROR $SUITE main" > "$MNT/etc/apt/sources.list"
echo 'Acquire::Check-Valid-Until "false";' > "$MNT/etc/apt/apt.conf.d/99e2e-valid-until"
chroot "$MNT" apt-get update -q
chroot "$MNT" apt-get install -y -q --no-install-recommends "$PKG"
`

// aptInstall runs aptScript and returns the overlay's upper directory, which
// holds every file apt added or changed.
func aptInstall(t testing.TB, base *Base, dir, pkg string) string {
	t.Helper()
	upper, work, mnt := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "mnt")
	for _, d := range []string{upper, work, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("creating %s: %v", d, err)
		}
	}
	cmd := exec.CommandContext(t.Context(), "unshare", "--mount", "--propagation", "private", "sh", "-c", aptScript)
	cmd.Env = []string{
		"PATH=" + guestPath, "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8",
		"BASE=" + base.Dir, "UPPER=" + upper, "WORK=" + work, "MNT=" + mnt,
		"PKG=" + pkg, "MIRROR=" + base.Stamp.Mirror, "SUITE=" + base.Stamp.Suite,
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("installing %s with apt in a copy of the base: %v\n%s", pkg, err, tail(string(out), 40))
	}
	return upper
}

// collectPackage copies the regular files and symlinks of package name under
// usr/ and opt/ from upper into stage and returns their relative paths.
func collectPackage(upper, stage, name string) ([]string, error) {
	return collectFiles(upper, stage, name, func(rel string) bool {
		return strings.HasPrefix(rel, "usr/") || strings.HasPrefix(rel, "opt/")
	})
}

// collectFiles copies the regular files (modes, setuid bits included) and
// symlinks of package name whose merged-/usr path keep accepts from upper
// into stage, and returns their relative paths.
func collectFiles(upper, stage, name string, keep func(rel string) bool) ([]string, error) {
	list, err := packageList(upper, name)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, p := range list {
		rel := mergedUsr(p)
		if !keep(rel) {
			continue
		}
		src := filepath.Join(upper, rel)
		info, err := os.Lstat(src)
		if err != nil {
			// Directories shipped by the base are not in the upper layer.
			continue
		}
		dst := filepath.Join(stage, rel)
		switch {
		case info.Mode().IsRegular():
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			if err := copyFile(src, dst, info.Mode().Perm()); err != nil {
				return nil, fmt.Errorf("copying %s: %w", rel, err)
			}
			if err := os.Chmod(dst, info.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
				return nil, err
			}
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return nil, err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			if err := os.Symlink(target, dst); err != nil {
				return nil, fmt.Errorf("linking %s: %w", rel, err)
			}
		default:
			continue
		}
		files = append(files, rel)
	}
	return files, nil
}

// packageList reads dpkg's file list of name (NAME.list or NAME:ARCH.list).
func packageList(root, name string) ([]string, error) {
	info := filepath.Join(root, "var/lib/dpkg/info")
	candidates, _ := filepath.Glob(filepath.Join(info, name+":*.list"))
	candidates = append([]string{filepath.Join(info, name+".list")}, candidates...)
	for _, c := range candidates {
		data, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		return strings.Fields(string(data)), nil
	}
	return nil, fmt.Errorf("no dpkg file list for %s in %s", name, info)
}

// mergedUsr returns p relative to / with the merged-/usr aliases (/bin,
// /lib, ...) folded into usr/, as they land on a trixie root.
func mergedUsr(p string) string {
	rel := strings.TrimPrefix(filepath.Clean(p), "/")
	first, _, _ := strings.Cut(rel, "/")
	switch first {
	case "bin", "sbin", "lib", "lib32", "lib64", "libx32":
		return "usr/" + rel
	}
	return rel
}

// dpkgVersions returns name -> version of the installed packages in a dpkg
// status file.
func dpkgVersions(t testing.TB, statusFile string) map[string]string {
	t.Helper()
	f, err := os.Open(statusFile)
	if err != nil {
		t.Fatalf("reading dpkg status: %v", err)
	}
	defer f.Close()
	out := map[string]string{}
	var name, version, status string
	flush := func() {
		if name != "" && status == "install ok installed" {
			out[name] = version
		}
		name, version, status = "", "", ""
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, " ") {
			continue
		}
		switch k {
		case "Package":
			name = strings.TrimSpace(v)
		case "Version":
			version = strings.TrimSpace(v)
		case "Status":
			status = strings.TrimSpace(v)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", statusFile, err)
	}
	return out
}
