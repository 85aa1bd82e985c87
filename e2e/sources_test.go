//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// tamperRegistry is go-containerregistry's in-process registry on host
// loopback (the container shares the network). When tamper holds a blob
// digest, that blob is served with one byte flipped and its size kept: a
// registry, or a proxy before it, handing out wrong bytes.
type tamperRegistry struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tamper string // "sha256:HEX", or ""
}

func newTamperRegistry(t *testing.T) *tamperRegistry {
	t.Helper()
	r := &tamperRegistry{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		bad := r.tamper
		r.mu.Unlock()
		if bad != "" && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/blobs/"+bad) {
			w = &flipWriter{ResponseWriter: w, at: 100}
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// host is HOST:PORT of the registry.
func (r *tamperRegistry) host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

func (r *tamperRegistry) setTamper(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tamper = digest
}

// tags lists the tags of repo, asked from the host.
func (r *tamperRegistry) tags(t *testing.T, repo string) []string {
	t.Helper()
	resp, err := http.Get(r.srv.URL + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("tags of %s: HTTP %d, %v", repo, resp.StatusCode, err)
	}
	return body.Tags
}

// flipWriter inverts the body byte at offset at.
type flipWriter struct {
	http.ResponseWriter
	at, n int
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if i := f.at - f.n; i >= 0 && i < len(p) {
		q := append([]byte(nil), p...)
		q[i] ^= 0xff
		p = q
	}
	f.n += len(p)
	return f.ResponseWriter.Write(p)
}

// closedPortURL is an http URL on host loopback where nothing listens: a
// GitHub that cannot be reached (connection refused).
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/"
}

// buildVersionFile builds a small handmade extension sysext-NAME shipping
// /usr/lib/NAME/version (VERSION): the merged file says which release is
// active.
func buildVersionFile(t *testing.T, name, version string) *Built {
	t.Helper()
	tree := t.TempDir()
	dst := filepath.Join(tree, "usr/lib", name, "version")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte(version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return finishImage(t, tree, name, version, ExtOptions{})
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// dirNames lists a directory's entries, space-separated ("" when it is
// empty or missing).
func dirNames(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

// stateRecord is the part of a state.json record the scenario checks.
type stateRecord struct {
	Version string `json:"version"`
	Digest  string `json:"digest"`
	Source  string `json:"source"`
}

func (a *appliance) state() map[string]stateRecord {
	a.t.Helper()
	var st struct {
		Extensions map[string]stateRecord `json:"extensions"`
	}
	if err := json.Unmarshal(a.c.ReadFile(a.t, "/var/lib/sysextd/state.json"), &st); err != nil {
		a.t.Fatalf("state.json: %v", err)
	}
	return st.Extensions
}

const (
	mirrorDir    = "/srv/mirror"
	mirrorURL    = "file:///srv/mirror"
	sourcesPlain = `[e2e-mir]
url = "https://github.com/SpamTagger/sysext-e2e-mir"

[e2e-oci]
url = "https://github.com/SpamTagger/sysext-e2e-oci"
`
)

// TestSourcesMirrorAndOCI: in the booted trixie, `sysextctl mirror` fills a
// file:// mirror and an OCI registry from GitHub; with GitHub unreachable,
// install and update come from them (the manifest entry's mirrors for one
// extension, sysextd.toml's global list for the other), and an image whose
// bytes do not match the published digest is refused with nothing changed.
func TestSourcesMirrorAndOCI(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	reg := newTamperRegistry(t)
	a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
	oci := "oci://" + reg.host() + "/spamtagger"
	down := closedPortURL(t)
	a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(sourcesPlain), 0o644)
	built := map[string]*Built{}
	release := func(name, version string) {
		built[name+"@"+version] = buildVersionFile(t, name, version)
		a.publish(built[name+"@"+version])
	}

	// offline runs sysextctl with GitHub unreachable, and checks that not
	// one request reached the GitHub stand-in meanwhile.
	offline := func(t *testing.T, args ...string) (string, string, int) {
		t.Helper()
		before := a.gh.Stats()
		argv := append([]string{"sysextctl", "--github-api", down}, args...)
		stdout, stderr, code := a.c.Exec(t, argv...)
		t.Logf("sysextctl (GitHub unreachable) %s -> %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		if after := a.gh.Stats(); after.API != before.API || after.Downloads != before.Downloads {
			t.Errorf("GitHub was asked while unreachable: %+v -> %+v", before, after)
		}
		return stdout, stderr, code
	}
	merged := func(t *testing.T, name string) string {
		t.Helper()
		out, _, code := a.c.Exec(t, "cat", "/usr/lib/"+name+"/version")
		if code != 0 {
			return "<not merged>"
		}
		return strings.TrimSpace(out)
	}
	isMerged := func(t *testing.T, image string) bool {
		t.Helper()
		for _, n := range mergedExtensions(t, a.c, "/usr") {
			if n == image {
				return true
			}
		}
		return false
	}

	t.Run("mirror fills a file mirror and a registry from GitHub", func(t *testing.T) {
		a.t = t
		release("e2e-mir", "1")
		release("e2e-oci", "1")
		if out := a.mustCtl("mirror", "--to", mirrorURL, "e2e-mir"); !strings.Contains(out, "mirrored e2e-mir 1 (v1)") {
			t.Errorf("mirror to %s: %q", mirrorURL, out)
		}
		if out := a.mustCtl("mirror", "--to", oci, "e2e-oci"); !strings.Contains(out, "mirrored e2e-oci 1 (v1)") {
			t.Errorf("mirror to %s: %q", oci, out)
		}
		var idx struct {
			Releases []struct {
				Tag    string `json:"tag"`
				Assets []struct {
					Name   string `json:"name"`
					Size   int64  `json:"size"`
					SHA256 string `json:"sha256"`
				} `json:"assets"`
			} `json:"releases"`
		}
		if err := json.Unmarshal(a.c.ReadFile(t, mirrorDir+"/sysext-e2e-mir/index.json"), &idx); err != nil {
			t.Fatalf("mirror index: %v", err)
		}
		want := strings.TrimPrefix(fileDigest(t, built["e2e-mir@1"].Path), "sha256:")
		found := false
		for _, r := range idx.Releases {
			for _, as := range r.Assets {
				if r.Tag == "v1" && as.Name == "sysext-e2e-mir_trixie_amd64.squashfs" && as.SHA256 == want {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("index.json does not list v1's image with sha256 %s: %+v", want, idx)
		}
		tags := strings.Join(reg.tags(t, "spamtagger/sysext-e2e-oci"), " ")
		if !strings.Contains(tags, "v1_trixie_amd64") || !strings.Contains(tags, "trixie_amd64") {
			t.Errorf("registry tags %q, want v1_trixie_amd64 and trixie_amd64", tags)
		}
	})

	t.Run("GitHub unreachable and no mirror: install fails for the network", func(t *testing.T) {
		a.t = t
		_, stderr, code := offline(t, "install", "e2e-mir")
		if code != 4 || !strings.Contains(stderr, "e2e-mir") {
			t.Errorf("install with GitHub unreachable and no mirror: exit %d, stderr %q; want 4 naming e2e-mir", code, stderr)
		}
		if a.exists("/var/lib/extensions/sysext-e2e-mir.raw") {
			t.Error("an image was placed though nothing could be fetched")
		}
	})

	// The file mirror in the entry, the registry in sysextd.toml's global
	// list (tried after each entry's url and mirrors).
	a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(strings.Replace(sourcesPlain,
		`sysext-e2e-mir"`, `sysext-e2e-mir"`+"\nmirrors = [\""+mirrorURL+"\"]", 1)), 0o644)
	a.c.WriteFile(t, "/etc/sysextd/sysextd.toml", []byte("mirrors = [\""+oci+"\"]\n"), 0o644)

	for _, src := range []struct{ name, url string }{{"e2e-mir", mirrorURL}, {"e2e-oci", oci}} {
		t.Run("GitHub unreachable: install "+src.name+" from "+src.url, func(t *testing.T) {
			a.t = t
			if _, _, code := offline(t, "install", src.name); code != 0 {
				t.Fatalf("install %s: exit %d", src.name, code)
			}
			if got := merged(t, src.name); got != "1" || !isMerged(t, "sysext-"+src.name) {
				t.Errorf("after install: /usr/lib/%s/version %q, merged %v; want 1 and sysext-%s merged", src.name, got, mergedExtensions(t, a.c, "/usr"), src.name)
			}
			rec := a.state()[src.name]
			if rec.Version != "1" || rec.Source != src.url || rec.Digest != fileDigest(t, built[src.name+"@1"].Path) {
				t.Errorf("state record %+v, want version 1 from %s with the image's digest", rec, src.url)
			}
			if it := a.list()[src.name]; it.Status != "active" || it.InstalledVersion != "1" {
				t.Errorf("list: %+v, want active 1", it)
			}
		})
	}

	t.Run("GitHub unreachable: update moves both to v2", func(t *testing.T) {
		a.t = t
		release("e2e-mir", "2")
		release("e2e-oci", "2")
		a.mustCtl("mirror", "--to", mirrorURL, "e2e-mir")
		a.mustCtl("mirror", "--to", oci, "e2e-oci")
		out, _, code := offline(t, "update")
		if code != 0 {
			t.Fatalf("update: exit %d", code)
		}
		st := a.state()
		for _, src := range []struct{ name, url string }{{"e2e-mir", mirrorURL}, {"e2e-oci", oci}} {
			if !strings.Contains(out, src.name+" updated from 1 to 2") {
				t.Errorf("update output lacks %q: %q", src.name+" updated from 1 to 2", out)
			}
			if got := merged(t, src.name); got != "2" {
				t.Errorf("merged %s version %q, want 2", src.name, got)
			}
			if rec := st[src.name]; rec.Version != "2" || rec.Source != src.url || rec.Digest != fileDigest(t, built[src.name+"@2"].Path) {
				t.Errorf("state record of %s %+v, want version 2 from %s with the image's digest", src.name, rec, src.url)
			}
		}
	})

	// refused checks that an update to v3 of name failed naming the
	// extension and a digest mismatch, and that v2 is untouched: still
	// merged, the same image in place, the same state record.
	refused := func(t *testing.T, name string, wantInStderr ...string) {
		t.Helper()
		before := a.state()[name]
		placed := fileDigest(t, a.c.path("/var/lib/extensions/sysext-"+name+".raw"))
		_, stderr, code := offline(t, "update", name)
		if code == 0 {
			t.Errorf("update %s to a tampered v3: exit 0", name)
		}
		for _, w := range append([]string{name, "digest mismatch"}, wantInStderr...) {
			if !strings.Contains(stderr, w) {
				t.Errorf("update %s: stderr %q lacks %q", name, stderr, w)
			}
		}
		if got := merged(t, name); got != "2" || !isMerged(t, "sysext-"+name) {
			t.Errorf("after the refusal the merged %s is %q, want 2", name, got)
		}
		if after := a.state()[name]; after != before {
			t.Errorf("state record changed: %+v -> %+v", before, after)
		}
		if got := fileDigest(t, a.c.path("/var/lib/extensions/sysext-"+name+".raw")); got != placed {
			t.Errorf("the placed image changed: %s -> %s", placed, got)
		}
		if got := dirNames(t, a.c.path("/var/lib/extensions")); got != "sysext-e2e-mir.raw sysext-e2e-oci.raw" {
			t.Errorf("/var/lib/extensions holds %q after the refusal", got)
		}
		if got := dirNames(t, a.c.path("/var/lib/sysextd/staging")); got != "" {
			t.Errorf("the refused download was left in staging: %q", got)
		}
	}

	t.Run("a tampered image in the file mirror is refused", func(t *testing.T) {
		a.t = t
		release("e2e-mir", "3")
		a.mustCtl("mirror", "--to", mirrorURL, "e2e-mir")
		img := a.c.path(mirrorDir + "/sysext-e2e-mir/v3/sysext-e2e-mir_trixie_amd64.squashfs")
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff // same size, different bytes
		if err := os.WriteFile(img, b, 0o644); err != nil {
			t.Fatal(err)
		}
		refused(t, "e2e-mir", strings.TrimPrefix(fileDigest(t, built["e2e-mir@3"].Path), "sha256:"))
	})

	t.Run("a tampered blob from the registry is refused", func(t *testing.T) {
		a.t = t
		release("e2e-oci", "3")
		a.mustCtl("mirror", "--to", oci, "e2e-oci")
		want := fileDigest(t, built["e2e-oci@3"].Path)
		reg.setTamper(want)
		defer reg.setTamper("")
		refused(t, "e2e-oci", strings.TrimPrefix(want, "sha256:"))
	})
}
