package source

import (
	"crypto/rand"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// benchSize is the image size of the download benchmarks.
const benchSize = 64 << 20

// benchRelease writes a file:// mirror holding a benchSize image and
// returns the mirror's base and the release.
func benchRelease(b *testing.B) (string, *Release) {
	b.Helper()
	img := make([]byte, benchSize)
	if _, err := rand.Read(img); err != nil {
		b.Fatal(err)
	}
	files := helloFiles()
	files["sysext-hello_trixie_amd64.squashfs"] = img
	base := b.TempDir()
	writeMirror(b, base, files)
	rel := NewMirror(HTTPOptions{}, "").LatestAll(b.Context(), []Request{{Name: "hello", URL: "file://" + base}}, trixie)["hello"].Release
	if rel == nil {
		b.Fatal("no release")
	}
	return base, rel
}

func benchDownload(b *testing.B, p Provider, a Asset) {
	b.Helper()
	dir := b.TempDir()
	b.SetBytes(a.Size)
	b.ResetTimer()
	for b.Loop() {
		d, err := p.Download(b.Context(), a, dir)
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(d.Path)
	}
}

// Download of a 64 MiB image, verified (sha256, size) and fsynced, from
// each kind of source; in-process, loopback:
//
//	go test -run '^$' -bench BenchmarkDownload -benchtime 5x ./internal/source/
func BenchmarkDownloadMirrorFile(b *testing.B) {
	_, rel := benchRelease(b)
	benchDownload(b, NewMirror(HTTPOptions{}, ""), rel.Image)
}

func BenchmarkDownloadMirrorHTTP(b *testing.B) {
	base, rel := benchRelease(b)
	srv := httptest.NewServer(http.FileServer(http.Dir(base)))
	defer srv.Close()
	m := NewMirror(HTTPOptions{}, "")
	r := m.LatestAll(b.Context(), []Request{{Name: "hello", URL: srv.URL}}, trixie)["hello"]
	if r.Err != nil {
		b.Fatal(r.Err)
	}
	if r.Release.Image.Digest != rel.Image.Digest {
		b.Fatal("digest differs")
	}
	benchDownload(b, m, r.Release.Image)
}

func BenchmarkDownloadOCI(b *testing.B) {
	_, rel := benchRelease(b)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	b.Setenv("DOCKER_CONFIG", b.TempDir())
	url := "oci://" + strings.TrimPrefix(reg.URL, "http://") + "/bench"
	o := NewOCI(HTTPOptions{}, OCIConfig{}, "")
	if err := o.PushRelease(b.Context(), url, "sysext-hello", rel, trixie, NewMirror(HTTPOptions{}, ""), b.TempDir()); err != nil {
		b.Fatal(err)
	}
	r := o.LatestAll(b.Context(), []Request{{Name: "hello", URL: url}}, trixie)["hello"]
	if r.Err != nil {
		b.Fatal(r.Err)
	}
	benchDownload(b, o, r.Release.Image)
}

func BenchmarkDownloadLocal(b *testing.B) {
	base, _ := benchRelease(b)
	p := filepath.Join(base, "sysext-hello", "v1.0-1", "sysext-hello_trixie_amd64.squashfs")
	l := NewLocal(func(string) (map[string]string, error) { return map[string]string{"PACKAGE_VERSION": "1.0-1"}, nil }, 0)
	rel, err := l.Cached(Request{Name: "hello", URL: p}, trixie)
	if err != nil {
		b.Fatal(err)
	}
	benchDownload(b, l, rel.Image)
}
