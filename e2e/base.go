//go:build e2e

package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Debootstrap parameters of the base root. The packages are what SPEC §13
// asks for: systemd as PID 1 and a system bus for D-Bus unit control.
const (
	baseVariant  = "minbase"
	baseInclude  = "systemd,systemd-sysv,dbus,ca-certificates"
	baseHostname = "sysextd-e2e"

	defaultCacheDir = "/var/cache/sysextd-e2e"
	defaultMirror   = "http://deb.debian.org/debian"
)

// Dist is a Debian release the suite boots: the base is debootstrapped from
// it and extensions built for it carry its identity.
type Dist struct {
	// Suite is the debootstrap and apt suite, also the VERSION_CODENAME.
	Suite string
	// VersionID is the VERSION_ID extensions for this dist carry. forky has
	// none in its os-release while it is testing; its extensions carry 14,
	// which systemd-sysext ignores on a host without VERSION_ID and matches
	// once Debian 14 is released (docs/publishing.md).
	VersionID string
	// Script is debootstrap's fourth argument when the host's debootstrap
	// has no script for Suite (bookworm's has none for forky); "" for none.
	Script string
}

// The dists the suite runs on: trixie ships systemd 257, forky systemd 262.
var (
	Trixie = Dist{Suite: "trixie", VersionID: "13"}
	Forky  = Dist{Suite: "forky", VersionID: "14", Script: "/usr/share/debootstrap/scripts/sid"}
	Dists  = []Dist{Trixie, Forky}
)

// ForEachDist runs fn as a subtest per dist (TestX/trixie, TestX/forky),
// each with its own cached base.
func ForEachDist(t *testing.T, fn func(t *testing.T, base *Base)) {
	t.Helper()
	for _, d := range Dists {
		t.Run(d.Suite, func(t *testing.T) {
			fn(t, EnsureBaseFor(t, d))
		})
	}
}

// Base is a debootstrapped Debian root shared by every test. Treat Dir as
// read-only: containers and extension builds layer their changes over it.
type Base struct {
	// Dir is the root filesystem of the base.
	Dir string
	// Key identifies this build of the base; caches derived from the base
	// (extension trees) are keyed by it so that a rebuilt base invalidates them.
	Key string
	// Stamp is what was recorded when the base was built.
	Stamp BaseStamp
	// Dist is the release the base was built from.
	Dist Dist
}

// BaseStamp is written as the last step of a successful base build. A base
// directory without it is incomplete and is deleted and rebuilt.
type BaseStamp struct {
	Suite              string        `json:"suite"`
	Variant            string        `json:"variant"`
	Include            string        `json:"include"`
	Mirror             string        `json:"mirror"`
	BuiltAt            time.Time     `json:"built_at"`
	Duration           time.Duration `json:"duration_ns"`
	SystemdVersion     string        `json:"systemd_version"`
	DebootstrapVersion string        `json:"debootstrap_version"`
}

// CacheDir is where the harness keeps what outlives a test run: the base root
// and built extension trees. SYSEXTD_E2E_CACHE overrides the default
// /var/cache/sysextd-e2e. It is outside the repository on purpose.
func CacheDir() string {
	if d := os.Getenv("SYSEXTD_E2E_CACHE"); d != "" {
		return d
	}
	return defaultCacheDir
}

// Mirror is the Debian mirror used for debootstrap and for apt inside
// extension builds: SYSEXTD_E2E_MIRROR, else the first Debian archive that
// this host's apt uses, else deb.debian.org.
func Mirror() string {
	if m := os.Getenv("SYSEXTD_E2E_MIRROR"); m != "" {
		return m
	}
	if m := hostMirror("/etc/apt"); m != "" {
		return m
	}
	return defaultMirror
}

// hostMirror returns the first "…/debian" URI in apt's sources under etcApt,
// in one-line or deb822 format, or "".
func hostMirror(etcApt string) string {
	files := []string{filepath.Join(etcApt, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", "*"))
	files = append(files, more...)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "#") {
				continue
			}
			for _, field := range strings.Fields(line) {
				if strings.HasPrefix(field, "http") && strings.HasSuffix(strings.TrimSuffix(field, "/"), "/debian") {
					fh.Close()
					return strings.TrimSuffix(field, "/")
				}
			}
		}
		fh.Close()
	}
	return ""
}

// EnsureBase returns the cached trixie base: EnsureBaseFor(t, Trixie).
func EnsureBase(t testing.TB) *Base {
	t.Helper()
	return EnsureBaseFor(t, Trixie)
}

// EnsureBaseFor returns the cached base root of dist, building it with
// debootstrap when the cache holds no complete one. Building takes about half
// a minute; concurrent callers (several test binaries) serialize on a lock file.
func EnsureBaseFor(t testing.TB, dist Dist) *Base {
	t.Helper()
	requireRoot(t)
	ensureTools(t)
	baseSuite := dist.Suite

	top := filepath.Join(CacheDir(), baseSuite+"-base")
	if err := os.MkdirAll(top, 0o755); err != nil {
		t.Fatalf("creating cache %s: %v", top, err)
	}
	unlock := lockDir(t, top)
	defer unlock()

	rootDir := filepath.Join(top, "rootfs")
	stampPath := filepath.Join(top, "stamp.json")
	if b, err := readBase(rootDir, stampPath, dist); err == nil {
		return b
	}
	t.Logf("no complete base in %s: running debootstrap (about 30 s)", top)
	if err := os.RemoveAll(rootDir); err != nil {
		t.Fatalf("removing incomplete base: %v", err)
	}
	os.Remove(stampPath)

	tmp, err := os.MkdirTemp(top, "build-")
	if err != nil {
		t.Fatalf("creating build dir: %v", err)
	}
	defer os.RemoveAll(tmp)

	mirror := Mirror()
	start := time.Now()
	args := []string{"debootstrap", "--variant=" + baseVariant, "--include=" + baseInclude, baseSuite, tmp, mirror}
	if dist.Script != "" {
		args = append(args, dist.Script)
	}
	mustRun(t, t.Context(), args...)
	took := time.Since(start)
	t.Logf("debootstrap %s from %s took %s", baseSuite, mirror, took.Round(time.Second))

	// A fixed hostname instead of the build host's.
	if err := os.WriteFile(filepath.Join(tmp, "etc/hostname"), []byte(baseHostname+"\n"), 0o644); err != nil {
		t.Fatalf("writing hostname: %v", err)
	}
	stamp := BaseStamp{
		Suite: baseSuite, Variant: baseVariant, Include: baseInclude, Mirror: mirror,
		BuiltAt: time.Now().UTC(), Duration: took,
		SystemdVersion:     dpkgVersions(t, filepath.Join(tmp, "var/lib/dpkg/status"))["systemd"],
		DebootstrapVersion: strings.TrimSpace(mustRun(t, t.Context(), "dpkg-query", "-W", "-f=${Version}", "debootstrap")),
	}
	if err := os.Rename(tmp, rootDir); err != nil {
		t.Fatalf("moving base into place: %v", err)
	}
	data, err := json.MarshalIndent(stamp, "", "  ")
	if err != nil {
		t.Fatalf("encoding stamp: %v", err)
	}
	if err := writeFileAtomic(stampPath, data, 0o644); err != nil {
		t.Fatalf("writing stamp: %v", err)
	}
	b, err := readBase(rootDir, stampPath, dist)
	if err != nil {
		t.Fatalf("reading the base just built: %v", err)
	}
	return b
}

// readBase returns the base when both its root and stamp exist.
func readBase(rootDir, stampPath string, dist Dist) (*Base, error) {
	data, err := os.ReadFile(stampPath)
	if err != nil {
		return nil, fmt.Errorf("reading stamp: %w", err)
	}
	var st BaseStamp
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decoding stamp %s: %w", stampPath, err)
	}
	if _, err := os.Stat(filepath.Join(rootDir, "usr/lib/systemd/systemd")); err != nil {
		return nil, fmt.Errorf("checking base root: %w", err)
	}
	sum := sha256.Sum256(data)
	return &Base{Dir: rootDir, Key: hex.EncodeToString(sum[:6]), Stamp: st, Dist: dist}, nil
}

// lockDir takes an exclusive flock on dir/.lock and returns its release.
func lockDir(t testing.TB, dir string) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("opening lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("locking %s: %v", dir, err)
	}
	return func() { f.Close() }
}

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return fmt.Errorf("creating temp file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return nil
}
