package source

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

// BenchmarkLatestAll100 checks 100 extensions against a server that takes
// 100 ms for every answer, cold cache each iteration (target: ≤ 1 s/op with
// the default parallelism).
func BenchmarkLatestAll100(b *testing.B) {
	s := newFake(b)
	var reqs []Request
	for i := range 100 {
		name := fmt.Sprintf("sysext-b%03d", i)
		publish(s, ext{repo: name, image: name, tag: "t1", version: "1.0-1"})
		reqs = append(reqs, request(name, name))
	}
	s.SetLatency(100 * time.Millisecond)
	for b.Loop() {
		g := newGitHub(b, s, nil)
		for name, r := range g.LatestAll(b.Context(), reqs, trixie) {
			if r.Err != nil {
				b.Fatalf("%s: %v", name, r.Err)
			}
		}
	}
}

// BenchmarkDownload streams a 256 MiB asset through the fake, verifying it.
func BenchmarkDownload(b *testing.B) {
	const size = 256 << 20
	src := filepath.Join(b.TempDir(), "big.squashfs")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	s := newFake(b)
	s.Publish("SpamTagger", "sysext-big", fakegithub.Release{Tag: "t1", Assets: []fakegithub.Asset{
		{Name: "sysext-big_trixie_amd64.squashfs", Path: src},
		{Name: "sysext-big_trixie_amd64.manifest", Data: manifestFor("sysext-big", "1", "trixie", "amd64")},
	}})
	g := newGitHub(b, s, nil)
	rel, err := g.Latest(b.Context(), request("sysext-big", "sysext-big"), trixie)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	b.SetBytes(size)
	for b.Loop() {
		d, err := g.Download(b.Context(), rel.Image, dir)
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(d.Path)
	}
}
