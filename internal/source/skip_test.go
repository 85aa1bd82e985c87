package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
)

// Request.Skip (issue 22: phased away, withdrawn): every provider answers
// its newest usable release not skipped, from its cache too, and
// ErrAllSkipped (also ErrNoAsset) naming the extension when none is left.

// checkAllSkipped asserts err is the "every usable release skipped" error
// for extension name.
func checkAllSkipped(t *testing.T, what string, err error, name string) {
	t.Helper()
	if !errors.Is(err, ErrAllSkipped) || !errors.Is(err, ErrNoAsset) {
		t.Errorf("%s: %v, want ErrAllSkipped and ErrNoAsset", what, err)
		return
	}
	if !strings.Contains(err.Error(), "extension "+name+":") {
		t.Errorf("%s: %q does not name extension %s", what, err, name)
	}
}

func TestSkipGitHub(t *testing.T) {
	s := newFake(t)
	now := time.Now()
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1", published: now.Add(-3 * time.Hour)})
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t2", version: "2.0-1", published: now.Add(-2 * time.Hour)})
	// A newer release built only for forky is not usable, skipped or not.
	forkyOnly(s, "sysext-hello", "t2-forky", now.Add(-90*time.Minute))
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t3", version: "3.0-1", published: now.Add(-time.Hour)})
	g := newGitHub(t, s, nil)
	req := request("sysext-hello", "sysext-hello")

	// Skipping what is not the latest costs nothing more: latest only.
	q := req
	q.Skip = []string{"t2"}
	if rel, err := g.Latest(t.Context(), q, trixie); err != nil || rel.Tag != "t3" {
		t.Fatalf("skip t2: %v, %v; want t3", rel, err)
	}
	if st := s.Stats(); st.API != 1 {
		t.Errorf("skip t2: %d API requests, want 1 (latest)", st.API)
	}

	// The latest skipped: the list is asked, as for a latest without this
	// host's build, and the newest usable one left is taken.
	s.ResetStats()
	q.Skip = []string{"t3"}
	if rel, err := g.Latest(t.Context(), q, trixie); err != nil || rel.Tag != "t2" || rel.Version != "2.0-1" {
		t.Fatalf("skip t3: %v, %v; want t2 2.0-1", rel, err)
	}
	if st := s.Stats(); st.API != 2 {
		t.Errorf("skip t3: %d API requests, want 2 (latest, then the list)", st.API)
	}
	q.Skip = []string{"t3", "t2"}
	res := g.LatestAll(t.Context(), []Request{q}, trixie)["sysext-hello"]
	if res.Err != nil || res.Release.Tag != "t1" {
		t.Fatalf("skip t3, t2 through LatestAll: %+v; want t1", res)
	}
	all := req
	all.Skip = []string{"t1", "t2", "t3"}
	_, err := g.Latest(t.Context(), all, trixie)
	checkAllSkipped(t, "every release skipped", err, "sysext-hello")

	// Skipping never changes what is remembered about this host's builds:
	// without a skip, latest is asked first again, one request.
	s.ResetStats()
	if rel, err := g.Latest(t.Context(), req, trixie); err != nil || rel.Tag != "t3" {
		t.Fatalf("no skip: %v, %v; want t3", rel, err)
	}
	if st := s.Stats(); st.API != 1 {
		t.Errorf("no skip after skipping: %d API requests, want 1", st.API)
	}

	// Offline (another process, same cache) the same answers.
	off := newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = g.opts.CacheDir })
	for _, tt := range []struct {
		skip []string
		want string
	}{{nil, "t3"}, {[]string{"t2"}, "t3"}, {[]string{"t3"}, "t2"}, {[]string{"t3", "t2"}, "t1"}} {
		q := req
		q.Skip = tt.skip
		if rel, err := off.Cached(q, trixie); err != nil || rel.Tag != tt.want {
			t.Errorf("Cached skipping %v: %v, %v; want %s", tt.skip, rel, err, tt.want)
		}
	}
	_, err = off.Cached(all, trixie)
	checkAllSkipped(t, "Cached, every release skipped", err, "sysext-hello")

	// A cache that only knows the latest release does not offer it when
	// it is skipped.
	fresh := newGitHub(t, s, nil)
	if _, err := fresh.Latest(t.Context(), req, trixie); err != nil {
		t.Fatal(err)
	}
	q.Skip = []string{"t3"}
	if rel, err := newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = fresh.opts.CacheDir }).Cached(q, trixie); !errors.Is(err, ErrNotCached) {
		t.Errorf("Cached skipping the only release cached: %v, %v; want ErrNotCached", rel, err)
	}
}

// writeMirrorReleases writes a static mirror of sysext-hello with one
// release per version, v1 oldest: tag "vVERSION", published a day apart.
func writeMirrorReleases(t testing.TB, base string, versions ...string) {
	t.Helper()
	ix := Index{Format: IndexFormat, Image: "sysext-hello"}
	for i, v := range versions {
		rel := IndexRelease{Tag: "v" + v, PublishedAt: time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC)}
		dir := filepath.Join(base, "sysext-hello", rel.Tag)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{
			"sysext-hello_trixie_amd64.squashfs": []byte("pretend squashfs " + v),
			"sysext-hello_trixie_amd64.manifest": fmt.Appendf(nil, "ID=debian\nVERSION_ID=13\nPACKAGE=hello\nPACKAGE_VERSION=%s\nBUILD_TIME=2026-01-0%dT00:00:00Z\n", v, 1+i),
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			rel.Assets = append(rel.Assets, IndexAsset{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		}
		ix.Releases = append(ix.Releases, rel)
	}
	b, err := json.Marshal(ix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "sysext-hello", "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSkipMirror(t *testing.T) {
	base := t.TempDir()
	writeMirrorReleases(t, base, "1.0-1", "2.0-1", "3.0-1")
	srv := httptest.NewServer(http.FileServer(http.Dir(base)))
	defer srv.Close()
	cache := t.TempDir()
	for _, u := range []string{"file://" + base, srv.URL + "/"} {
		m := NewMirror(HTTPOptions{}, cache)
		req := Request{Name: "hello", URL: u}
		for _, tt := range []struct {
			skip []string
			want string
		}{{nil, "v3.0-1"}, {[]string{"v2.0-1"}, "v3.0-1"}, {[]string{"v3.0-1"}, "v2.0-1"}, {[]string{"v3.0-1", "v2.0-1"}, "v1.0-1"}} {
			q := req
			q.Skip = tt.skip
			res := m.LatestAll(t.Context(), []Request{q}, trixie)["hello"]
			if res.Err != nil || res.Release.Tag != tt.want || "v"+res.Release.Version != tt.want {
				t.Errorf("%s skipping %v: %+v; want %s", u, tt.skip, res, tt.want)
			}
		}
		q := req
		q.Skip = []string{"v1.0-1", "v2.0-1", "v3.0-1"}
		checkAllSkipped(t, u+" every release skipped", m.LatestAll(t.Context(), []Request{q}, trixie)["hello"].Err, "hello")
	}

	// The https mirror offline, from the cache: the same answers.
	srv.Close()
	m := NewMirror(HTTPOptions{}, cache)
	req := Request{Name: "hello", URL: srv.URL + "/"}
	for _, tt := range []struct {
		skip []string
		want string
	}{{nil, "v3.0-1"}, {[]string{"v3.0-1"}, "v2.0-1"}, {[]string{"v3.0-1", "v2.0-1"}, "v1.0-1"}} {
		q := req
		q.Skip = tt.skip
		if rel, err := m.Cached(q, trixie); err != nil || rel.Tag != tt.want {
			t.Errorf("Cached skipping %v: %v, %v; want %s", tt.skip, rel, err, tt.want)
		}
	}
	req.Skip = []string{"v1.0-1", "v2.0-1", "v3.0-1"}
	_, err := m.Cached(req, trixie)
	checkAllSkipped(t, "Cached, every release skipped", err, "hello")
}

func TestSkipOCI(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	base := t.TempDir()
	writeMirrorReleases(t, base, "1.0-1", "2.0-1", "3.0-1")
	m := NewMirror(HTTPOptions{}, "")
	o := NewOCI(HTTPOptions{}, OCIConfig{}, "")
	ns := "oci://" + host + "/spamtagger"
	var skip []string
	for range 3 { // newest first, each push an older one
		res := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: "file://" + base, Skip: skip}}, trixie)["hello"]
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if err := o.PushRelease(t.Context(), ns, "sysext-hello", res.Release, trixie, m, t.TempDir()); err != nil {
			t.Fatalf("push %s: %v", res.Release.Tag, err)
		}
		skip = append(skip, res.Release.Tag)
	}

	cache := t.TempDir()
	o2 := NewOCI(HTTPOptions{}, OCIConfig{}, cache)
	req := Request{Name: "hello", URL: ns}
	cases := []struct {
		skip []string
		want string
	}{{nil, "v3.0-1"}, {[]string{"v2.0-1"}, "v3.0-1"}, {[]string{"v3.0-1"}, "v2.0-1"}, {[]string{"v3.0-1", "v2.0-1"}, "v1.0-1"}}
	for _, tt := range cases {
		q := req
		q.Skip = tt.skip
		res := o2.LatestAll(t.Context(), []Request{q}, trixie)["hello"]
		if res.Err != nil || res.Release.Tag != tt.want || "v"+res.Release.Version != tt.want {
			t.Errorf("skipping %v: %+v; want %s", tt.skip, res, tt.want)
		}
	}
	all := req
	all.Skip = []string{"v1.0-1", "v2.0-1", "v3.0-1"}
	checkAllSkipped(t, "every release skipped", o2.LatestAll(t.Context(), []Request{all}, trixie)["hello"].Err, "hello")

	// Offline, after a lookup without a skip: the cache keeps the other
	// releases too, so a skip needs no registry.
	if res := o2.LatestAll(t.Context(), []Request{req}, trixie)["hello"]; res.Err != nil {
		t.Fatal(res.Err)
	}
	reg.Close()
	off := NewOCI(HTTPOptions{}, OCIConfig{}, cache)
	for _, tt := range cases {
		q := req
		q.Skip = tt.skip
		if rel, err := off.Cached(q, trixie); err != nil || rel.Tag != tt.want {
			t.Errorf("Cached skipping %v: %v, %v; want %s", tt.skip, rel, err, tt.want)
		}
	}
	_, err := off.Cached(all, trixie)
	checkAllSkipped(t, "Cached, every release skipped", err, "hello")
}

func TestSkipLocal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sysext-hello.raw")
	if err := os.WriteFile(p, []byte("pretend image"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := NewLocal(func(string) (map[string]string, error) {
		return map[string]string{"PACKAGE_VERSION": "1.0-1"}, nil
	}, 0)
	req := Request{Name: "hello", URL: p, Skip: []string{"v1"}}
	if rel, err := l.Cached(req, trixie); err != nil || rel.Version != "1.0-1" {
		t.Fatalf("skipping another tag: %v, %v", rel, err)
	}
	req.Skip = []string{"local"}
	checkAllSkipped(t, "the file skipped", l.LatestAll(t.Context(), []Request{req}, trixie)["hello"].Err, "hello")
}
