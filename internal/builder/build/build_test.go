package build

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/builder/debian"
	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/testutil/fakearchive"
)

const baseStatus = `Package: libc6
Status: install ok installed
Version: 2.41-12
Architecture: amd64

Package: base-files
Status: install ok installed
Version: 13.8
Architecture: amd64
`

// fixtureArchive has hello in trixie (with a dependency and a security
// update of it) and in forky.
func fixtureArchive(t *testing.T) *fakearchive.Archive {
	return fakearchive.New(t, []fakearchive.Pkg{
		{Name: "hello", Version: "2.10-5", Suite: "trixie", Depends: "libc6 (>= 2.34), libgreet",
			Files: map[string]string{"usr/bin/hello": "trixie hello", "usr/share/doc/hello/copyright": "GPL",
				"etc/hello.conf": "greeting=hi", "var/lib/hello/state": "x", "bin/hello-compat": "->hello"},
			Modes: map[string]int64{"usr/bin/hello": 0o4755}},
		{Name: "libgreet", Version: "1.0-1", Suite: "trixie", Files: map[string]string{"usr/lib/libgreet.so.1": "old"}},
		{Name: "libgreet", Version: "1.0-1+deb13u1", Suite: "trixie-security", Files: map[string]string{"usr/lib/libgreet.so.1": "fixed"},
			Postinst: "#!/bin/sh\nset -e\nadduser --system greet\n# setcap in a comment does not count\n",
			Triggers: "interest-noawait /usr/share/greet\n"},
		{Name: "hello", Version: "2.12-1", Suite: "forky", Depends: "libc6", Files: map[string]string{"usr/bin/hello": "forky hello"}},
	})
}

func fixtureBase(t *testing.T) *Base {
	t.Helper()
	p := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(p, []byte(baseStatus), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := LoadBase(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildTwoDists(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("SKIP: mksquashfs (squashfs-tools) not installed")
	}
	fa := fixtureArchive(t)
	m, err := ParseMetadata([]byte(`{"name": "sysext-hello", "package": "hello", "dists": ["trixie", "forky"],
		"architectures": ["amd64"], "component": "main", "update": "service: hello.service",
		"repository": "https://github.com/SpamTagger/sysext-hello"}`), "metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	res, err := Build(context.Background(), Options{
		Metadata: m, Bases: map[string]*Base{"": fixtureBase(t)}, OutDir: out, Now: now,
		Archive: &debian.Archive{Mirror: fa.URL, SecurityMirror: fa.URL, Keyring: fa.Keyring, CacheDir: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantAssets := []string{"sysext-hello_trixie_amd64.squashfs", "sysext-hello_trixie_amd64.manifest",
		"sysext-hello_forky_amd64.squashfs", "sysext-hello_forky_amd64.manifest", "release.json", "SHA256SUMS"}
	if !slices.Equal(res.Assets, wantAssets) {
		t.Errorf("assets = %v, want %v", res.Assets, wantAssets)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != len(wantAssets) {
		t.Errorf("output dir holds %d entries, want %d (no work dir left)", len(entries), len(wantAssets))
	}
	for _, tt := range []struct{ dist, versionID, pkgVersion, content string }{
		{"trixie", "13", "2.10-5", "trixie hello"},
		{"forky", "14", "2.12-1", "forky hello"},
	} {
		t.Run(tt.dist, func(t *testing.T) {
			base := filepath.Join(out, "sysext-hello_"+tt.dist+"_amd64")
			man, err := os.ReadFile(base + ".manifest")
			if err != nil {
				t.Fatal(err)
			}
			f := osrelease.Parse(man)
			want := map[string]string{"ID": "debian", "VERSION_ID": tt.versionID, "VERSION_CODENAME": tt.dist,
				"NAME": "sysext-hello", "PACKAGE": "hello", "PACKAGE_VERSION": tt.pkgVersion, "ARCH": "amd64",
				"ARCHITECTURE": "x86-64", "BUILD_TIME": "2026-11-01T09:00:00", "UPDATE": "service: hello.service",
				"EXTENSION_RESTART_UNITS": "hello.service",
				"REPOSITORY":              "https://github.com/SpamTagger/sysext-hello"}
			for k, v := range want {
				if f[k] != v {
					t.Errorf("%s = %q, want %q", k, f[k], v)
				}
			}
			info, err := image.Inspect(base + ".squashfs")
			if err != nil {
				t.Fatal(err)
			}
			if info.Name != "sysext-hello" || info.Fields["VERSION_ID"] != tt.versionID || info.Compression != "zstd" {
				t.Errorf("image: name %q VERSION_ID %q compression %q", info.Name, info.Fields["VERSION_ID"], info.Compression)
			}
			body, err := image.ReadFile(base+".squashfs", "usr/bin/hello")
			if err != nil || string(body) != tt.content {
				t.Errorf("usr/bin/hello = %q, %v; want %q", body, err, tt.content)
			}
		})
	}

	var rj ReleaseJSON
	if err := json.Unmarshal(mustRead(t, filepath.Join(out, "release.json")), &rj); err != nil {
		t.Fatal(err)
	}
	if rj.PackageVersions["trixie_amd64"] != "2.10-5" || rj.PackageVersions["forky_amd64"] != "2.12-1" || rj.Version != "2026.11.01-0900" {
		t.Errorf("release.json = %+v", rj)
	}
	if got := rj.Packages["trixie_amd64"]["libgreet"]; got != "1.0-1+deb13u1" {
		t.Errorf("libgreet = %q, want the security update", got)
	}
	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = out
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, b)
	}

	trixie := res.Images[0]
	if len(trixie.Scripts) != 1 || trixie.Scripts[0].Package != "libgreet" || !slices.Equal(trixie.Scripts[0].Actions, []string{"creates system users or groups", "regenerates data when /usr/share/greet changes (a dpkg trigger; what it generates is not in the image)"}) {
		for _, s := range trixie.Scripts {
			t.Errorf("maintainer scripts: %+v", *s)
		}
	}
	if !slices.Equal(trixie.Dropped, []string{"hello: /var/lib/hello/state"}) {
		t.Errorf("dropped = %v", trixie.Dropped)
	}
	wantFiles := []string{"etc/hello.conf", "usr/bin/hello", "usr/bin/hello-compat", "usr/lib/libgreet.so.1", "usr/share/doc/hello/copyright"}
	if !slices.Equal(trixie.Files, wantFiles) {
		t.Errorf("files = %v, want %v", trixie.Files, wantFiles)
	}
}

// TestOwnersAndModesWithoutRoot checks the image carries the modes the
// package declares even though the files on disk are the builder's.
func TestOwnersAndModes(t *testing.T) {
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("SKIP: squashfs-tools not installed")
	}
	fa := fixtureArchive(t)
	m, err := ParseMetadata([]byte(`{"name": "sysext-hello", "package": "hello", "dists": ["trixie"], "architectures": ["amd64"]}`), "m.json")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := Build(context.Background(), Options{Metadata: m, Bases: map[string]*Base{"": fixtureBase(t)}, OutDir: out,
		Archive: &debian.Archive{Mirror: fa.URL, Keyring: fa.Keyring, CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	listing, err := exec.Command("unsquashfs", "-lln", res.Images[0].Path).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-rwsr-xr-x 0/0", "drwxr-xr-x 0/0"} {
		if !strings.Contains(string(listing), want) {
			t.Errorf("listing lacks %q:\n%s", want, listing)
		}
	}
	for _, line := range strings.Split(string(listing), "\n") {
		if strings.HasSuffix(line, " squashfs-root/usr/bin/hello") {
			if !strings.HasPrefix(line, "-rwsr-xr-x 0/0") {
				t.Errorf("usr/bin/hello: %s", line)
			}
		}
		if f := strings.Fields(line); len(f) > 1 && f[1] != "0/0" {
			t.Errorf("not owned by root: %s", line)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"template", `{"name": "sysext-hello", "description": "x", "architectures": ["amd64"], "dists": ["trixie"], "component": "main", "package": "hello", "update": "none", "repository": "https://github.com/SpamTagger/sysext-template"}`, ""},
		{"syntax error line", "{\n\"name\": \"x\",\n}", "m.json:3:"},
		{"wrong type", `{"name": "x", "dists": "trixie"}`, "field dists"},
		{"unknown dist", `{"name": "x", "package": "hello", "dists": ["sid"], "architectures": ["amd64"]}`, `dist "sid"`},
		{"bad arch", `{"name": "x", "package": "hello", "dists": ["trixie"], "architectures": ["x86_64"]}`, `architecture "x86_64"`},
		{"bad update", `{"name": "x", "package": "hello", "dists": ["trixie"], "architectures": ["amd64"], "update": "restart"}`, `update "restart"`},
		{"bad name", `{"name": "../x", "package": "hello", "dists": ["trixie"], "architectures": ["amd64"]}`, `name "../x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMetadata([]byte(tt.in), "m.json")
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "m.json") {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"name": "sysext-hello", "architectures": ["amd64"], "dists": ["trixie"], "package": "hello", "update": "service: a"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(b, "f")
		if err == nil && (m.Name == "" || len(m.Dists) == 0) {
			t.Fatalf("accepted %q", b)
		}
	})
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
