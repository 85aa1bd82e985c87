package buildcli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/testutil/fakearchive"
)

const status = "Package: libc6\nStatus: install ok installed\nVersion: 2.41-12\n\n"

const metadata = `{"name": "sysext-hello", "package": "hello", "dists": ["trixie"], "architectures": ["amd64"],
 "component": "main", "update": "none", "repository": "https://github.com/SpamTagger/sysext-hello"}`

// checkArchive has a binNMU of hello (binary 2.10-5+b1 of source 2.10-5)
// and a security update of its dependency libgreet.
func checkArchive(t *testing.T) *fakearchive.Archive {
	return fakearchive.New(t, []fakearchive.Pkg{
		{Name: "hello", Version: "2.10-5+b1", Source: "hello (2.10-5)", Suite: "trixie", Depends: "libc6, libgreet",
			Files: map[string]string{"usr/bin/hello": "x"}},
		{Name: "libgreet", Version: "1.0-1", Suite: "trixie", Files: map[string]string{"usr/lib/libgreet.so.1": "old"}},
		{Name: "libgreet", Version: "1.0-1+deb13u1", Suite: "trixie-security", Files: map[string]string{"usr/lib/libgreet.so.1": "new"}},
	})
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestCheck(t *testing.T) {
	fa := checkArchive(t)
	in := writeFiles(t, map[string]string{"metadata.json": metadata, "status": status})
	common := []string{"check", "--base", filepath.Join(in, "status"), "--mirror", fa.URL, "--security-mirror", fa.URL,
		"--keyring", fa.KeyringFile(t), "--cache", t.TempDir(), filepath.Join(in, "metadata.json")}
	tests := []struct {
		name, releaseJSON string // "" = no release yet
		wantCode          int
		wantOut           string
	}{
		{"up to date with binNMU and security update",
			`{"version": "2026.11.01-0900", "package_versions": {"trixie_amd64": "2.10-5+b1"},
			  "packages": {"trixie_amd64": {"hello": "2.10-5+b1", "libgreet": "1.0-1+deb13u1"}}}`, 0, "up to date (release 2026.11.01-0900)"},
		{"template release: binary version, not the source's",
			`{"version": "2026.11.01-0900", "package_versions": {"trixie_amd64": "2.10-5+b1"}}`, 0, "up to date"},
		{"security update of a dependency",
			`{"version": "t", "package_versions": {"trixie_amd64": "2.10-5+b1"},
			  "packages": {"trixie_amd64": {"hello": "2.10-5+b1", "libgreet": "1.0-1"}}}`, 1, "trixie_amd64: libgreet 1.0-1 -> 1.0-1+deb13u1"},
		{"binNMU after the release",
			`{"version": "t", "package_versions": {"trixie_amd64": "2.10-5"},
			  "packages": {"trixie_amd64": {"hello": "2.10-5", "libgreet": "1.0-1+deb13u1"}}}`, 1, "hello 2.10-5 -> 2.10-5+b1"},
		{"new arch in metadata", `{"version": "t", "package_versions": {"trixie_arm64": "2.10-5+b1"}}`, 1, "trixie_amd64: not in release t"},
		{"no release yet", "", 1, "no release yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			if tt.releaseJSON != "" {
				files["release.json"] = tt.releaseJSON
			}
			from := writeFiles(t, files)
			out, errOut, code := run(t, append(common, "--from", from)...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) {
				t.Errorf("exit %d, want %d; stdout %q does not hold %q; stderr %s", code, tt.wantCode, out, tt.wantOut, errOut)
			}
		})
	}
	t.Run("broken release.json is a failure, not a rebuild", func(t *testing.T) {
		from := writeFiles(t, map[string]string{"release.json": "{"})
		_, errOut, code := run(t, append(common, "--from", from)...)
		if code != ExitFailure || !strings.Contains(errOut, "release.json") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}
