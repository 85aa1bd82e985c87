package debian

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkUniverseRealIndex parses a real Packages.gz when
// SYSEXT_BUILD_BENCH_INDEX names one (e.g. from the sysext-build cache).
func BenchmarkUniverseRealIndex(b *testing.B) {
	p := os.Getenv("SYSEXT_BUILD_BENCH_INDEX")
	if p == "" {
		b.Skip("SKIP: set SYSEXT_BUILD_BENCH_INDEX to a Packages.gz")
	}
	for b.Loop() {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			b.Fatal(err)
		}
		pkgs, err := ParsePackages(zr, filepath.Base(p))
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewUniverse(pkgs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsedCacheRealIndex loads the parsed cache of the same index.
func BenchmarkParsedCacheRealIndex(b *testing.B) {
	p := os.Getenv("SYSEXT_BUILD_BENCH_INDEX")
	if p == "" {
		b.Skip("SKIP: set SYSEXT_BUILD_BENCH_INDEX to a Packages.gz")
	}
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	zr, _ := gzip.NewReader(f)
	pkgs, err := ParsePackages(zr, p)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	tmp := filepath.Join(b.TempDir(), "index")
	if err := storeParsed(tmp, pkgs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got := loadParsed(tmp)
		if len(got) != len(pkgs) {
			b.Fatalf("%d packages from the cache, want %d", len(got), len(pkgs))
		}
		if _, err := NewUniverse(got); err != nil {
			b.Fatal(err)
		}
	}
}
