package debian

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakearchive"
)

func universe(t *testing.T, index string) *Universe {
	t.Helper()
	pkgs, err := ParsePackages(strings.NewReader(index), "test")
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUniverse(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

const sum = "SHA256: 0000000000000000000000000000000000000000000000000000000000000000\nFilename: pool/x.deb\n"

func pkg(name, version, extra string) string {
	return "Package: " + name + "\nVersion: " + version + "\n" + extra + sum + "\n"
}

func TestResolve(t *testing.T) {
	base := `Package: libc6
Status: install ok installed
Version: 2.41-12
Provides: libc6-compat

Package: old
Status: install ok installed
Version: 1.0

Package: removed
Status: deinstall ok config-files
Version: 1.0
`
	archive := pkg("libc6", "2.41-12", "") +
		pkg("old", "2.0", "") +
		pkg("hello", "2.10-5", "Depends: libc6 (>= 2.34)\n") +
		pkg("app", "1.0", "Pre-Depends: libc6\nDepends: liba | libb, mail-transport-agent, libx (>= 2)\nRecommends: extra, missing-rec\n") +
		pkg("liba", "1.0", "") + pkg("libb", "1.0", "") +
		pkg("postfix", "3.0", "Provides: mail-transport-agent\nPriority: optional\n") +
		pkg("exim4", "4.0", "Provides: mail-transport-agent\nPriority: standard\n") +
		pkg("libx", "1.0", "") + pkg("libx", "2.1", "") +
		pkg("extra", "1.0", "Depends: libc6\n") +
		pkg("needs-old", "1.0", "Depends: old (>= 2)\n") +
		pkg("alt-installed", "1.0", "Depends: liba | libc6-compat\n") +
		pkg("broken", "1.0", "Depends: nothere\n") +
		pkg("vprov", "1.0", "Depends: virt (>= 2)\n") +
		pkg("p1", "1.0", "Provides: virt (= 1)\n") + pkg("p2", "1.0", "Provides: virt (= 3)\n") +
		pkg("removed", "1.0", "")
	statusPkgs, err := ParseStatus(strings.NewReader(base), "status")
	if err != nil {
		t.Fatal(err)
	}
	installed, err := NewUniverse(statusPkgs)
	if err != nil {
		t.Fatal(err)
	}
	avail := universe(t, archive)
	tests := []struct {
		name, root string
		opts       ResolveOptions
		want       []string
		wantErr    string
	}{
		{"dependency in base", "hello", ResolveOptions{}, []string{"hello 2.10-5"}, ""},
		{"alternatives, virtual, versions, recommends", "app", ResolveOptions{},
			[]string{"app 1.0", "exim4 4.0", "extra 1.0", "liba 1.0", "libx 2.1"}, ""},
		{"no recommends", "app", ResolveOptions{NoRecommends: true}, []string{"app 1.0", "exim4 4.0", "liba 1.0", "libx 2.1"}, ""},
		{"alternative provided by the base", "alt-installed", ResolveOptions{}, []string{"alt-installed 1.0"}, ""},
		{"versioned provides", "vprov", ResolveOptions{}, []string{"p2 1.0", "vprov 1.0"}, ""},
		{"base too old", "needs-old", ResolveOptions{}, nil, "upgrade to 2.0 would be needed"},
		{"unsatisfiable", "broken", ResolveOptions{}, nil, "nothere: no installable version"},
		{"already in base", "libc6", ResolveOptions{}, nil, "already installed in the base"},
		{"not in archive", "nope", ResolveOptions{}, nil, "not in the archive"},
		{"config-files only counts as absent", "removed", ResolveOptions{}, []string{"removed 1.0"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Resolve(avail, installed, tt.root, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range res.Packages {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Resolve = %v, want %v", got, tt.want)
			}
			if res.Why[tt.root] != tt.root {
				t.Errorf("Why[root] = %q", res.Why[tt.root])
			}
		})
	}
	if res, _ := Resolve(avail, installed, "app", ResolveOptions{}); len(res.SkippedRecommends) != 1 || !strings.Contains(res.SkippedRecommends[0], "missing-rec") {
		t.Errorf("SkippedRecommends = %v", res.SkippedRecommends)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no colon", "Package: a\nVersion: 1\nbogus line\n", "idx:3:"},
		{"continuation first", " cont\n", "idx:1: continuation"},
		{"no package", "Version: 1\n" + sum, "idx:1: paragraph has no Package"},
		{"bad version", "\nPackage: a\nVersion: 1:\n" + sum, "idx:2 (a): bad Version"},
		{"no sha", "Package: a\nVersion: 1\nFilename: x\n", "no SHA256"},
		{"repeated field", "Package: a\nPackage: b\n", "idx:2: field Package repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePackages(strings.NewReader(tt.in), "idx")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
	p, err := ParsePackages(strings.NewReader("Package: a\nVersion: 1\nDepends: b (>>\n"+sum), "idx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p[0].Relations(FieldDepends); err == nil || !strings.Contains(err.Error(), "idx:1 (a): bad Depends") {
		t.Errorf("Relations error = %v", err)
	}
}

func TestArchiveVerifiesEverything(t *testing.T) {
	fa := fakearchive.New(t, []fakearchive.Pkg{
		{Name: "hello", Version: "1.0", Suite: "trixie", Files: map[string]string{"usr/bin/hello": "#!/bin/sh\necho hi\n"}},
	})
	ctx := context.Background()
	a := &Archive{Mirror: fa.URL, Keyring: fa.Keyring, CacheDir: t.TempDir()}
	u, err := a.Universe(ctx, "trixie", "main", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	p := u.Candidate("hello")
	if p == nil || p.Suite != "trixie" {
		t.Fatalf("candidate = %v", p)
	}
	if _, err := a.Fetch(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Run("warm: parsed index from the cache", func(t *testing.T) {
		cached, _ := filepath.Glob(filepath.Join(a.CacheDir, "indices", "*.parsed-"+parsedCacheFormat))
		if len(cached) != 1 {
			t.Fatalf("parsed caches: %v", cached)
		}
		again, err := a.Universe(ctx, "trixie", "main", "amd64")
		if err != nil {
			t.Fatal(err)
		}
		q := again.Candidate("hello")
		if q == nil || q.String() != p.String() || q.SHA256 != p.SHA256 || q.Filename != p.Filename || q.Suite != "trixie" || q.Mirror != fa.URL {
			t.Errorf("from the cache: %+v, want %+v", q, p)
		}
		if err := os.WriteFile(cached[0], []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		if u, err := a.Universe(ctx, "trixie", "main", "amd64"); err != nil || u.Candidate("hello") == nil {
			t.Errorf("a damaged cache must be ignored: %v", err)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		other := &Archive{Mirror: fa.URL, Keyring: nil, CacheDir: t.TempDir()}
		if _, err := other.Universe(ctx, "trixie", "main", "amd64"); !errors.Is(err, ErrUnsigned) {
			t.Errorf("error = %v, want ErrUnsigned", err)
		}
	})
	t.Run("expired InRelease", func(t *testing.T) {
		late := &Archive{Mirror: fa.URL, Keyring: fa.Keyring, CacheDir: t.TempDir(),
			Now: func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }}
		if _, err := late.Release(ctx, Suite{fa.URL, "trixie"}); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "Valid-Until") {
			t.Errorf("error = %v, want an expiry error", err)
		}
	})
	t.Run("expired InRelease with IgnoreValidUntil: used, with a warning", func(t *testing.T) {
		var warned []string
		late := &Archive{Mirror: fa.URL, Keyring: fa.Keyring, CacheDir: t.TempDir(), IgnoreValidUntil: true,
			Warn: func(m string) { warned = append(warned, m) },
			Now:  func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }}
		u, err := late.Universe(ctx, "trixie", "main", "amd64")
		if err != nil || u.Candidate("hello") == nil {
			t.Fatalf("Universe = %v, want hello from the expired suite", err)
		}
		if len(warned) != 1 || !strings.Contains(warned[0], "WARNING") || !strings.Contains(warned[0], "dists/trixie/InRelease expired") {
			t.Errorf("warnings %q, want one naming the expired InRelease", warned)
		}
	})
	t.Run("IgnoreValidUntil does not skip the signature", func(t *testing.T) {
		other := &Archive{Mirror: fa.URL, Keyring: nil, CacheDir: t.TempDir(), IgnoreValidUntil: true,
			Now: func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }}
		if _, err := other.Release(ctx, Suite{fa.URL, "trixie"}); !errors.Is(err, ErrUnsigned) {
			t.Errorf("error = %v, want ErrUnsigned", err)
		}
	})
	t.Run("tampered InRelease", func(t *testing.T) {
		p := filepath.Join(fa.Dir, "dists/trixie/InRelease")
		orig, _ := os.ReadFile(p)
		t.Cleanup(func() { os.WriteFile(p, orig, 0o644) })
		os.WriteFile(p, []byte(strings.Replace(string(orig), "Suite: trixie", "Suite: trixiE", 1)), 0o644)
		if _, err := a.Release(ctx, Suite{fa.URL, "trixie"}); !errors.Is(err, ErrUnsigned) {
			t.Errorf("error = %v, want ErrUnsigned", err)
		}
	})
	t.Run("deb that does not match the index", func(t *testing.T) {
		bad := *p
		bad.SHA256 = strings.Repeat("a", 64)
		cache := t.TempDir()
		b := &Archive{Mirror: fa.URL, Keyring: fa.Keyring, CacheDir: cache}
		_, err := b.Fetch(ctx, &bad)
		var hm *HashMismatchError
		if !errors.As(err, &hm) || hm.Expected != bad.SHA256 || hm.Got != p.SHA256 {
			t.Fatalf("error = %v, want a HashMismatchError", err)
		}
		if left, _ := filepath.Glob(filepath.Join(cache, "debs", "*")); len(left) != 0 {
			t.Errorf("cache holds %v after a mismatch", left)
		}
	})
}

func FuzzParsePackages(f *testing.F) {
	f.Add(pkg("a", "1.0", "Depends: b (>= 1) | c, d:any\nProvides: x (= 1)\n"))
	f.Add("Package: a\nStatus: install ok installed\nVersion: 1\n\n")
	f.Add("Origin: Debian\nSHA256:\n 00 1 main/x\n")
	f.Fuzz(func(t *testing.T, in string) {
		if pkgs, err := ParsePackages(strings.NewReader(in), "f"); err == nil {
			u, err := NewUniverse(pkgs)
			if err == nil {
				for _, p := range pkgs {
					Resolve(u, &Universe{byName: map[string][]*Package{}, providers: map[string][]provided{}}, p.Name, ResolveOptions{})
				}
			}
		}
		ParseStatus(strings.NewReader(in), "f")
		ParseRelease([]byte(in), "f")
	})
}
