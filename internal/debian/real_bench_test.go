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
