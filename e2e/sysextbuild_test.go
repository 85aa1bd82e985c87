//go:build e2e

package e2e

import (
	"debug/elf"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/testutil/distribution"
	"github.com/spamtagger/sysextd/internal/testutil/release"
)

const securityMirror = "http://deb.debian.org/debian-security"

// sysextBuild runs the sysext-build binary as the unprivileged user nobody
// (the point: no root, no podman) and returns the output directory.
func sysextBuild(t *testing.T, base *Base, metadata string, extra ...string) string {
	t.Helper()
	out, log, err := runSysextBuild(t, base, metadata, extra...)
	if err != nil {
		t.Fatalf("sysext-build build: %v\n%s", err, log)
	}
	return out
}

// runSysextBuild is sysextBuild returning the failure and the output.
func runSysextBuild(t *testing.T, base *Base, metadata string, extra ...string) (outDir, log string, err error) {
	t.Helper()
	bin := GoBuild(t, "./cmd/sysext-build")
	work := t.TempDir()
	// nobody must reach the binary, the metadata and the output.
	for _, d := range []string{filepath.Dir(work), work} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(work, "metadata.json")
	if err := os.WriteFile(meta, []byte(metadata), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "output")
	// nobody's home survives runs, so that its cache does: sysext-build
	// is given no --cache and no cache variable, and must default to
	// ~/.cache/sysext-build for a user who is not root.
	home := filepath.Join(CacheDir(), "sysext-build-nobody-home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{work, home} {
		mustRun(t, t.Context(), "chown", "-R", "65534:65534", d)
	}
	// The cached base root is 0700 (debootstrap ran in a MkdirTemp
	// directory); nobody gets a copy of what a build reads from a base.
	baseCopy := filepath.Join(work, "base")
	for _, p := range []string{"var/lib/dpkg/status", "etc/passwd", "etc/group", "etc/os-release", "usr/lib/os-release", "usr/share/keyrings"} {
		if _, err := os.Lstat(filepath.Join(base.Dir, p)); err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(baseCopy, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		mustRun(t, t.Context(), "cp", "-a", filepath.Join(base.Dir, p), filepath.Join(baseCopy, p))
	}
	if err := os.Chmod(baseCopy, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"build", "--base", baseCopy, "--mirror", base.Stamp.Mirror,
		"--security-mirror", securityMirror, "--out", out}, extra...)
	cmd := exec.CommandContext(t.Context(), bin, append(args, meta)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Env = []string{"HOME=" + home} // env -i HOME=...: no PATH, no XDG_*, no SYSEXT_BUILD_CACHE
	outb, err := cmd.CombinedOutput()
	t.Logf("sysext-build %s (as nobody):\n%s", strings.Join(extra, " "), outb)
	if err == nil {
		if ents, err := os.ReadDir(filepath.Join(home, ".cache", "sysext-build")); err != nil || len(ents) == 0 {
			t.Errorf("nobody's default cache ~/.cache/sysext-build is empty after a build: %v", err)
		}
	}
	return out, string(outb), err
}

// imageFiles lists the regular files and symlinks of a squashfs image
// (unsquashfs -lls), relative, without the extension-release file.
func imageFiles(t *testing.T, img string) map[string]string {
	t.Helper()
	out := mustRun(t, t.Context(), "unsquashfs", "-lln", "-d", "", img)
	files := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || (f[0][0] != '-' && f[0][0] != 'l') {
			continue
		}
		p := strings.TrimPrefix(strings.Join(f[5:], " "), "/")
		if i := strings.Index(p, " -> "); i >= 0 && f[0][0] == 'l' {
			p = p[:i]
		}
		if strings.HasPrefix(p, "usr/lib/extension-release.d/") {
			continue
		}
		files[p] = f[0] + " " + f[1]
	}
	return files
}

// aptAddsScript installs $PKG with apt's defaults (Recommends included)
// from the main and security suites in an overlay over $BASE.
const aptAddsScript = `set -eu
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$UPPER,workdir=$WORK" "$MNT"
mount -t proc proc "$MNT/proc"
mount --rbind /sys "$MNT/sys"
mount --rbind /dev "$MNT/dev"
rm -f "$MNT/etc/resolv.conf"
cp -L /etc/resolv.conf "$MNT/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$MNT/usr/sbin/policy-rc.d"
chmod 0755 "$MNT/usr/sbin/policy-rc.d"
printf 'deb %s %s main\ndeb %s %s-security main\n' "$MIRROR" "$SUITE" "$SECURITY" "$SUITE" > "$MNT/etc/apt/sources.list"
echo 'Acquire::Check-Valid-Until "false";' > "$MNT/etc/apt/apt.conf.d/99e2e-valid-until"
chroot "$MNT" apt-get update -q
chroot "$MNT" apt-get install -y -q "$PKG"
`

// aptResult is what apt-get install added to a copy of the base.
type aptResult struct {
	// Files are the regular files and symlinks under usr/ and opt/ of the
	// overlay's upper layer, with ls-style mode and owner.
	Files map[string]string
	// Packages are the packages installed that the base did not have.
	Packages map[string]string
	// Listed are the paths dpkg lists for those packages (merged-/usr).
	Listed map[string]bool
}

// aptAdds runs apt-get install pkg in an overlay over base.
func aptAdds(t *testing.T, base *Base, pkg string) aptResult {
	t.Helper()
	dir := t.TempDir()
	upper, work, mnt := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "mnt")
	for _, d := range []string{upper, work, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), "unshare", "--mount", "--propagation", "private", "sh", "-c", aptAddsScript)
	cmd.Env = []string{"PATH=" + guestPath, "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8",
		"BASE=" + base.Dir, "UPPER=" + upper, "WORK=" + work, "MNT=" + mnt, "PKG=" + pkg,
		"MIRROR=" + base.Stamp.Mirror, "SECURITY=" + securityMirror, "SUITE=" + base.Stamp.Suite}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get install %s in a copy of the base: %v\n%s", pkg, err, tail(string(out), 40))
	}
	res := aptResult{Files: map[string]string{}, Packages: map[string]string{}, Listed: map[string]bool{}}
	err := filepath.Walk(upper, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if !strings.HasPrefix(rel, "usr/") && !strings.HasPrefix(rel, "opt/") {
			return nil
		}
		if info.Mode().IsRegular() || info.Mode()&os.ModeSymlink != 0 {
			st := info.Sys().(*syscall.Stat_t)
			res.Files[rel] = lsMode(st.Mode) + " " + itoa(st.Uid) + "/" + itoa(st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before := dpkgVersions(t, filepath.Join(base.Dir, "var/lib/dpkg/status"))
	for name, v := range dpkgVersions(t, filepath.Join(upper, "var/lib/dpkg/status")) {
		if _, ok := before[name]; ok {
			continue
		}
		res.Packages[name] = v
		list, err := packageList(upper, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			res.Listed[mergedUsr(p)] = true
		}
	}
	return res
}

// lsMode renders a stat mode the way unsquashfs -lln does.
func lsMode(m uint32) string {
	b := []byte("?rwxrwxrwx")
	switch m & syscall.S_IFMT {
	case syscall.S_IFREG:
		b[0] = '-'
	case syscall.S_IFLNK:
		b[0] = 'l'
	case syscall.S_IFDIR:
		b[0] = 'd'
	}
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if m&bit != 0 {
			if b[pos] == 'x' {
				b[pos] = set
			} else {
				b[pos] = unset
			}
		}
	}
	special(syscall.S_ISUID, 3, 's', 'S')
	special(syscall.S_ISGID, 6, 's', 'S')
	special(syscall.S_ISVTX, 9, 't', 'T')
	return string(b)
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func helloMetadata(dists, archs string) string {
	return `{"name": "sysext-hello", "description": "hello as an extension",
  "architectures": [` + archs + `], "dists": [` + dists + `], "component": "main",
  "package": "hello", "update": "none", "repository": "https://github.com/SpamTagger/sysext-hello"}`
}

// TestSysextBuildHello builds the template's own metadata.json (hello,
// trixie, amd64) without root, checks the image against what apt adds to
// the same base, then installs it with sysextctl on a booted trixie from a
// local release and runs hello.
func TestSysextBuildHello(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	out := sysextBuild(t, base, helloMetadata(`"trixie"`, `"amd64"`))
	img := filepath.Join(out, "sysext-hello_trixie_amd64.squashfs")
	manifest, err := os.ReadFile(filepath.Join(out, "sysext-hello_trixie_amd64.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	fields := osrelease.Parse(manifest)

	t.Run("same files as apt-get install", func(t *testing.T) {
		compareWithApt(t, base, out, img, "hello", nil)
	})

	t.Run("publishes to a registry as nobody", func(t *testing.T) {
		publishAsNobody(t, out, fields["PACKAGE_VERSION"])
	})

	t.Run("installs and runs on a booted trixie", func(t *testing.T) {
		a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
		a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(manifestHelloOnly), 0o644)
		release.Publish(t, a.gh, release.Ext{Package: "hello", Version: fields["PACKAGE_VERSION"], Image: "sysext-hello",
			Arch: "amd64", ImagePath: img, Release: fields, ManifestFields: fields})
		a.mustCtl("install", "hello")
		if got := strings.TrimSpace(a.c.MustExec(t, "hello")); got != "Hello, world!" {
			t.Errorf("hello printed %q", got)
		}
	})
}

// TestSysextBuildHelloForky builds hello for forky, whose archive is past
// its Valid-Until: refused by default, built with --ignore-valid-until
// (warning loudly), carrying VERSION_ID=14 and VERSION_CODENAME=forky
// while forky's os-release has no VERSION_ID; the image holds what apt
// installs, and merges and runs on a booted forky (systemd 262).
func TestSysextBuildHelloForky(t *testing.T) {
	requireRoot(t)
	base := EnsureBaseFor(t, Forky)
	meta := helloMetadata(`"forky"`, `"amd64"`)
	if _, log, err := runSysextBuild(t, base, meta); err == nil || !strings.Contains(log, "Valid-Until") || !strings.Contains(log, "--ignore-valid-until") {
		t.Errorf("without --ignore-valid-until: err %v; want a refusal naming Valid-Until and the flag\n%s", err, log)
	}
	out, log, err := runSysextBuild(t, base, meta, "--ignore-valid-until")
	if err != nil {
		t.Fatalf("sysext-build --ignore-valid-until: %v\n%s", err, log)
	}
	if !strings.Contains(log, "WARNING: --ignore-valid-until") || !strings.Contains(log, "forky/InRelease expired") {
		t.Errorf("no loud warning about the expired InRelease:\n%s", log)
	}
	img := filepath.Join(out, "sysext-hello_forky_amd64.squashfs")
	fields := osrelease.Parse(mustReadFile(t, filepath.Join(out, "sysext-hello_forky_amd64.manifest")))
	if fields["VERSION_ID"] != "14" || fields["VERSION_CODENAME"] != "forky" || fields["ID"] != "debian" {
		t.Errorf("manifest ID %q VERSION_ID %q VERSION_CODENAME %q, want debian 14 forky", fields["ID"], fields["VERSION_ID"], fields["VERSION_CODENAME"])
	}
	if host := osrelease.Parse(mustReadFile(t, filepath.Join(base.Dir, "usr/lib/os-release"))); host["VERSION_ID"] != "" {
		t.Logf("note: forky's os-release now has VERSION_ID=%s", host["VERSION_ID"])
	}

	t.Run("same files as apt-get install", func(t *testing.T) {
		compareWithApt(t, base, out, img, "hello", nil)
	})

	t.Run("installs and runs on a booted forky", func(t *testing.T) {
		a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
		a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(manifestHelloOnly), 0o644)
		release.Publish(t, a.gh, release.Ext{Package: "hello", Version: fields["PACKAGE_VERSION"], Image: "sysext-hello",
			Arch: "amd64", Codename: "forky", ImagePath: img, Release: fields, ManifestFields: fields})
		a.mustCtl("install", "hello")
		if got := strings.TrimSpace(a.c.MustExec(t, "hello")); got != "Hello, world!" {
			t.Errorf("hello printed %q", got)
		}
		if got := a.c.MustExec(t, "systemd-sysext", "status", "--json=short"); !strings.Contains(got, "sysext-hello") {
			t.Errorf("systemd-sysext status does not list sysext-hello: %s", got)
		}
	})
}

// compareWithApt fails unless the image holds the packages apt-get
// install pkg adds to a copy of base, and their files under usr/ and opt/
// (type, and mode and owner of regular files). Files apt's run adds that no
// package lists (generated by maintainer scripts and triggers, e.g.
// update-mime-database) are logged, not compared; scriptModes lists the
// paths whose mode a maintainer script changes (path -> why), expected to
// differ.
func compareWithApt(t *testing.T, base *Base, out, img, pkg string, scriptModes map[string]string) {
	t.Helper()
	var rel struct {
		Packages map[string]map[string]string `json:"packages"`
	}
	if err := json.Unmarshal(mustReadFile(t, filepath.Join(out, "release.json")), &rel); err != nil {
		t.Fatal(err)
	}
	apt := aptAdds(t, base, pkg)
	if got := rel.Packages[base.Dist.Suite+"_amd64"]; !maps.Equal(got, apt.Packages) {
		t.Errorf("packages: image %v\napt adds %v", got, apt.Packages)
	}
	got := imageFiles(t, img)
	var missing, extra, differ, generated []string
	for p, w := range apt.Files {
		if !apt.Listed[p] {
			generated = append(generated, p)
			continue
		}
		g, ok := got[p]
		switch {
		case !ok:
			missing = append(missing, p)
		case g[0] != w[0] || (g[0] == '-' && g != w):
			if why, ok := scriptModes[p]; ok {
				t.Logf("%s: image %s, apt %s (%s; maintainer scripts do not run)", p, g, w, why)
				delete(scriptModes, p)
				continue
			}
			differ = append(differ, p+": image "+g+", apt "+w)
		}
	}
	for p := range got {
		if _, ok := apt.Files[p]; !ok && !strings.HasPrefix(p, "etc/") {
			extra = append(extra, p)
		}
	}
	for p := range scriptModes {
		t.Errorf("%s: expected a mode difference (%s), found none", p, scriptModes[p])
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(differ)
	if len(missing)+len(extra)+len(differ) > 0 || len(apt.Files) == 0 {
		t.Errorf("image vs apt (%d vs %d files):\nmissing from image: %v\nonly in image: %v\ndiffering: %v", len(got), len(apt.Files), missing, extra, differ)
		return
	}
	t.Logf("%d packages and %d files under usr/ and opt/ as apt installs them; %d more files generated by maintainer scripts or triggers (not in the image)",
		len(apt.Packages), len(apt.Files)-len(generated), len(generated))
	if len(generated) > 0 {
		slices.Sort(generated)
		t.Logf("generated, e.g.: %v", generated[:min(5, len(generated))])
	}
}

// TestSysextBuildOpenVMTools does for open-vm-tools (many dependencies,
// Recommends, units, etc/ files) what TestSysextBuildHello does for hello.
func TestSysextBuildOpenVMTools(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	meta := strings.ReplaceAll(helloMetadata(`"trixie"`, `"amd64"`), "hello", "open-vm-tools")
	out := sysextBuild(t, base, meta)
	img := filepath.Join(out, "sysext-open-vm-tools_trixie_amd64.squashfs")
	fields := osrelease.Parse(mustReadFile(t, filepath.Join(out, "sysext-open-vm-tools_trixie_amd64.manifest")))
	t.Run("same files as apt-get install", func(t *testing.T) {
		compareWithApt(t, base, out, img, "open-vm-tools", map[string]string{
			"usr/bin/fusermount3": "fuse3's postinst makes it setuid root",
		})
	})
	t.Run("installs and runs on a booted trixie", func(t *testing.T) {
		a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
		// sysext-build resolves every dependency the minimal base lacks,
		// libpam-cap among them, whose /etc/security/capability.conf the
		// payload policy refuses unless the entry allows it (docs/trust.md);
		// the template-built image (TestVGAuthThroughSysextctl) needs no
		// allowance.
		a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte("[open-vm-tools]\nurl = \"https://github.com/SpamTagger/sysext-open-vm-tools\"\n"+
			"allow_etc = [\"security/capability.conf\"]\n"), 0o644)
		release.Publish(t, a.gh, release.Ext{Package: "open-vm-tools", Version: fields["PACKAGE_VERSION"], Image: "sysext-open-vm-tools",
			Arch: "amd64", ImagePath: img, Release: fields, ManifestFields: fields})
		a.mustCtl("install", "open-vm-tools")
		// vmware-toolbox-cmd refuses to run outside a VM; ethtool comes
		// from the image too, with libraries from the image.
		if got := a.c.MustExec(t, "ethtool", "--version"); !strings.Contains(got, "ethtool version") {
			t.Errorf("ethtool --version printed %q", got)
		}
		if got := a.unit("LoadState", "open-vm-tools.service"); got != "loaded" {
			t.Errorf("open-vm-tools.service is %q, want loaded from the image", got)
		}
		if _, _, code := a.c.Exec(t, "test", "-x", "/usr/bin/vmtoolsd"); code != 0 {
			t.Error("/usr/bin/vmtoolsd is not there")
		}
	})
}

const manifestHelloOnly = `[hello]
url = "https://github.com/SpamTagger/sysext-hello"
`

// TestSysextBuildArm64 builds hello for arm64 on this amd64 host, with no
// emulation, and checks the machine of its binaries.
func TestSysextBuildArm64(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	out := sysextBuild(t, base, helloMetadata(`"trixie"`, `"arm64"`))
	img := filepath.Join(out, "sysext-hello_trixie_arm64.squashfs")
	dir := filepath.Join(t.TempDir(), "x")
	mustRun(t, t.Context(), "unsquashfs", "-d", dir, img)
	f, err := elf.Open(filepath.Join(dir, "usr/bin/hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("usr/bin/hello is for %v, want EM_AARCH64", f.Machine)
	}
	m := osrelease.Parse(mustReadFile(t, filepath.Join(out, "sysext-hello_trixie_arm64.manifest")))
	if m["ARCH"] != "arm64" || m["ARCHITECTURE"] != "arm64" || m["VERSION_ID"] != "13" {
		t.Errorf("manifest: %v", m)
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishAsNobody runs sysext-build publish --to oci:// as nobody with
// nothing but HOME set, to a docker-registry that needs a login, the
// login in nobody's ~/.docker/config.json (written by oras login), and
// reads the release back with sysextd's OCI source.
func publishAsNobody(t *testing.T, out, version string) {
	reg := distribution.Start(t, true)
	home := t.TempDir()
	bin := GoBuild(t, "./cmd/sysext-build")
	// nobody must reach the binary and its home.
	for _, d := range []string{filepath.Dir(home), home, filepath.Dir(bin), filepath.Dir(filepath.Dir(bin))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(home, ".docker", "config.json")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	reg.AuthJSON(t, cfg)
	mustRun(t, t.Context(), "chown", "-R", "65534:65534", home)
	to := "oci://" + reg.Host + "/fleet"
	cmd := exec.CommandContext(t.Context(), bin, "publish", "--dir", out, "--to", to)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Env = []string{"HOME=" + home}
	outb, err := cmd.CombinedOutput()
	t.Logf("sysext-build publish --to %s (as nobody):\n%s", to, outb)
	if err != nil {
		t.Fatalf("sysext-build publish: %v", err)
	}
	logins, _, err := source.LoadRegistryLogins([]source.LoginFile{{Path: cfg, User: true}})
	if err != nil {
		t.Fatal(err)
	}
	r := source.NewOCI(source.HTTPOptions{}, source.OCIConfig{Logins: logins}, "").LatestAll(t.Context(),
		[]source.Request{{Name: "hello", URL: to}}, source.Target{Codename: "trixie", Arch: "amd64"})["hello"]
	if r.Err != nil || r.Release.Version != version {
		t.Fatalf("reading back what nobody published: %+v", r)
	}
}
