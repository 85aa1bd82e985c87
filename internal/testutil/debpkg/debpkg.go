// Package debpkg fetches a real Debian package with apt-get download and
// unpacks it, so tests can build extension images from real binaries the
// way the sysext template does.
package debpkg

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var mu sync.Mutex

// Files downloads pkg (cached in the system temp dir across runs), unpacks
// it and returns its regular files under usr/ and opt/ as path -> content,
// plus the package version. Without apt-get or a mirror the test is skipped,
// except under CI (CI=true), where it fails.
func Files(t testing.TB, pkg string) (files map[string]string, version string) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	cache := filepath.Join(os.TempDir(), "sysextd-test-debs")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	debs, _ := filepath.Glob(filepath.Join(cache, pkg+"_*.deb"))
	if len(debs) == 0 {
		cmd := exec.Command("apt-get", "download", pkg)
		cmd.Dir = cache
		if out, err := cmd.CombinedOutput(); err != nil {
			unavailable(t, "apt-get download "+pkg+": "+err.Error()+": "+string(out))
		}
		debs, _ = filepath.Glob(filepath.Join(cache, pkg+"_*.deb"))
		if len(debs) == 0 {
			unavailable(t, "apt-get download "+pkg+" left no .deb")
		}
	}
	out, err := exec.Command("dpkg-deb", "-f", debs[0], "Version").Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s: %v", debs[0], err)
	}
	version = strings.TrimSpace(string(out))
	tree := t.TempDir()
	var stderr bytes.Buffer
	cmd := exec.Command("dpkg-deb", "-x", debs[0], tree)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v: %s", debs[0], err, stderr.String())
	}
	files = map[string]string{}
	err = filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		if !strings.HasPrefix(rel, "usr/") && !strings.HasPrefix(rel, "opt/") {
			return nil
		}
		b, err := os.ReadFile(p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, version
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot fetch a Debian package under CI: %s", why)
	}
	t.Skip("SKIPPED (no Debian mirror): " + why)
}
