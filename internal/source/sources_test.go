package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

var trixie = Target{Codename: "trixie", Arch: "amd64"}

const helloManifest = "ID=debian\nVERSION_ID=13\nPACKAGE=hello\nPACKAGE_VERSION=1.0-1\nBUILD_TIME=2026-01-02T03:04:05Z\n"

// writeMirror writes a static mirror by hand, as a CI following
// docs/sources.md would: BASE/IMAGE/index.json and BASE/IMAGE/TAG/NAME.
func writeMirror(t testing.TB, base string, files map[string][]byte, extra ...IndexRelease) {
	t.Helper()
	rel := IndexRelease{Tag: "v1.0-1", PublishedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	dir := filepath.Join(base, "sysext-hello", rel.Tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		rel.Assets = append(rel.Assets, IndexAsset{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	ix := Index{Format: IndexFormat, Image: "sysext-hello", Releases: append([]IndexRelease{rel}, extra...)}
	b, err := json.Marshal(ix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "sysext-hello", "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func helloFiles() map[string][]byte {
	return map[string][]byte{
		"sysext-hello_trixie_amd64.squashfs": []byte("pretend squashfs"),
		"sysext-hello_trixie_amd64.manifest": []byte(helloManifest),
		"SHA256SUMS":                         []byte("sums\n"),
	}
}

func TestMirrorLookupDownloadFetch(t *testing.T) {
	base := t.TempDir()
	// A newer release built only for forky does not hide the trixie one.
	writeMirror(t, base, helloFiles(), IndexRelease{Tag: "v2", PublishedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Assets: []IndexAsset{{Name: "sysext-hello_forky_amd64.squashfs", Size: 1, SHA256: strings.Repeat("0", 64)}}})
	m := NewMirror(HTTPOptions{}, t.TempDir())
	req := Request{Name: "hello", URL: "file://" + base}
	res := m.LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	rel := res.Release
	if rel.Tag != "v1.0-1" || rel.Version != "1.0-1" || rel.Image.Unverified || rel.Kind != sourceref.KindMirror {
		t.Fatalf("release = %+v", rel)
	}
	d, err := m.Download(t.Context(), rel.Image, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(d.Path); string(b) != "pretend squashfs" {
		t.Errorf("downloaded %q", b)
	}
	sums, err := m.Fetch(t.Context(), rel.Assets["SHA256SUMS"])
	if err != nil || string(sums) != "sums\n" {
		t.Errorf("Fetch(SHA256SUMS) = %q, %v", sums, err)
	}
	// Tampered bytes are refused, and nothing is left behind.
	if err := os.WriteFile(filepath.Join(base, "sysext-hello", "v1.0-1", "sysext-hello_trixie_amd64.squashfs"), []byte("tampered squashfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var sm *SizeMismatchError
	if _, err := m.Download(t.Context(), rel.Image, dir); !errors.As(err, &sm) {
		t.Errorf("tampered download: %v, want a size mismatch", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files left in the staging dir", len(ents))
	}
}

func TestRouterFallsThroughToMirror(t *testing.T) {
	base := t.TempDir()
	writeMirror(t, base, helloFiles())
	// The primary: an https mirror nobody listens on.
	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()
	r := &Router{Kinds: map[sourceref.Kind]Provider{sourceref.KindMirror: NewMirror(HTTPOptions{}, "")}, Mirrors: []string{"file://" + base}}
	req := Request{Name: "hello", URL: deadURL + "/m"}
	res := r.LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	if res.Err != nil {
		t.Fatalf("with the primary down: %v, want the mirror's release", res.Err)
	}
	if res.Release.Origin != "file://"+base {
		t.Errorf("origin %q, want the mirror", res.Release.Origin)
	}
	if _, err := r.Download(t.Context(), res.Release.Image, t.TempDir()); err != nil {
		t.Errorf("download through the router: %v", err)
	}
	// A real answer from the primary (no such extension) does not fall through.
	r.Mirrors = nil
	req.URL = "file://" + t.TempDir()
	r.Mirrors = []string{"file://" + base}
	if res := r.LatestAll(t.Context(), []Request{req}, trixie)["hello"]; res.Err == nil {
		t.Error("an answer of the primary was overridden by the mirror")
	}
	r.MirrorsFirst = true
	if res := r.LatestAll(t.Context(), []Request{req}, trixie)["hello"]; res.Err != nil {
		t.Errorf("mirrors first: %v", res.Err)
	}
}

func TestOCIRoundTrip(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	base := t.TempDir()
	writeMirror(t, base, helloFiles())
	m := NewMirror(HTTPOptions{}, "")
	rel := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: "file://" + base}}, trixie)["hello"].Release
	if rel == nil {
		t.Fatal("no release in the mirror")
	}
	o := NewOCI(HTTPOptions{}, OCIConfig{}, "")
	ns := "oci://" + host + "/spamtagger"
	if err := o.PushRelease(t.Context(), ns, "sysext-hello", rel, trixie, m, t.TempDir()); err != nil {
		t.Fatalf("push: %v", err)
	}

	cache := t.TempDir()
	o2 := NewOCI(HTTPOptions{}, OCIConfig{}, cache)
	req := Request{Name: "hello", URL: ns}
	res := o2.LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	got := res.Release
	if got.Tag != "v1.0-1" || got.Version != "1.0-1" || got.Image.Digest != rel.Image.Digest || got.Image.Unverified {
		t.Fatalf("from the registry: %+v, want v1.0-1 with digest %s", got, rel.Image.Digest)
	}
	d, err := o2.Download(t.Context(), got.Image, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d.SHA256 != rel.Image.Digest {
		t.Errorf("downloaded %s, want %s", d.SHA256, rel.Image.Digest)
	}
	reg.Close()
	off, err := o2.Cached(req, trixie)
	if err != nil || off.Version != "1.0-1" {
		t.Errorf("Cached with the registry gone: %v, %v", off, err)
	}
	res = NewOCI(HTTPOptions{}, OCIConfig{}, "").LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	if !IsNetwork(res.Err) {
		t.Errorf("registry down: %v, want a network error (falls through to the next mirror)", res.Err)
	}
}

func TestHTTPSMirrorCachedOffline(t *testing.T) {
	base := t.TempDir()
	writeMirror(t, base, helloFiles())
	srv := httptest.NewServer(http.FileServer(http.Dir(base)))
	defer srv.Close()
	cache := t.TempDir()
	m := NewMirror(HTTPOptions{}, cache)
	req := Request{Name: "hello", URL: srv.URL + "/"}
	if res := m.LatestAll(t.Context(), []Request{req}, trixie)["hello"]; res.Err != nil || res.Release.Version != "1.0-1" {
		t.Fatalf("online: %+v", res)
	}
	srv.Close()
	rel, err := NewMirror(HTTPOptions{}, cache).Cached(req, trixie)
	if err != nil || rel.Version != "1.0-1" {
		t.Fatalf("offline from the cache: %v, %v", rel, err)
	}
	if _, err := NewMirror(HTTPOptions{}, t.TempDir()).Cached(req, trixie); !errors.Is(err, ErrNotCached) {
		t.Errorf("offline, empty cache: %v, want ErrNotCached", err)
	}
	// Plain http to anything but loopback is refused before any request.
	if _, err := sourceref.Parse("http://mirror.example/m"); err == nil {
		t.Error("plain http to a remote mirror accepted")
	}
}

// TestRouterDownloadFallsThrough: the primary answers the lookup but
// rate-limits the download (a bare 429); the image comes from the mirror,
// checked against the digest the primary published.
func TestRouterDownloadFallsThrough(t *testing.T) {
	base := t.TempDir()
	writeMirror(t, base, helloFiles())
	fs := http.FileServer(http.Dir(base))
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".squashfs") {
			w.Header().Set("Retry-After", "60")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		fs.ServeHTTP(w, r)
	}))
	defer primary.Close()
	mirror := t.TempDir()
	writeMirror(t, mirror, helloFiles())
	r := &Router{Kinds: map[sourceref.Kind]Provider{sourceref.KindMirror: NewMirror(HTTPOptions{}, "")}, Mirrors: []string{"file://" + mirror}}
	res := r.LatestAll(t.Context(), []Request{{Name: "hello", URL: primary.URL}}, trixie)["hello"]
	if res.Err != nil || res.Release.Origin != primary.URL {
		t.Fatalf("lookup: %+v, want the primary's answer", res)
	}
	d, err := r.Download(t.Context(), res.Release.Image, t.TempDir())
	if err != nil {
		t.Fatalf("download: %v, want it from the mirror", err)
	}
	if d.SHA256 != res.Release.Image.Digest {
		t.Errorf("downloaded %s, want the primary's digest %s", d.SHA256, res.Release.Image.Digest)
	}

	// A mirror with other bytes under the same name is not used.
	files := helloFiles()
	files["sysext-hello_trixie_amd64.squashfs"] = []byte("other squashfs!!")
	writeMirror(t, mirror, files)
	if _, err := r.Download(t.Context(), res.Release.Image, t.TempDir()); err == nil {
		t.Error("downloaded from a mirror whose digest differs")
	} else if _, rl := IsRateLimit(err); !rl {
		t.Errorf("error %v, want the primary's rate limit", err)
	}
}
