package source

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/spamtagger/sysextd/internal/sourceref"
	"github.com/spamtagger/sysextd/internal/testutil/distribution"
)

// These tests run Debian's docker-registry (CNCF distribution) and push
// with oras, the way a fleet's CI does; internal/testutil/distribution.

// orasRelease writes one release's files as CI has them and pushes them
// with oras's defaults (no media type, artifact type or annotation of
// ours) under tags.
func orasRelease(t *testing.T, reg *distribution.Registry, repo, version, build string, tags ...string) {
	t.Helper()
	dir := t.TempDir()
	p := trixie.Prefix("sysext-hello")
	files := map[string]string{
		p + ".squashfs": "pretend squashfs " + version + build,
		p + ".manifest": fmt.Sprintf("ID=debian\nVERSION_ID=13\nPACKAGE=hello\nPACKAGE_VERSION=%s\nBUILD_TIME=%s\n", version, build),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg.Oras(t, dir, "push", reg.Host+"/"+repo+":"+strings.Join(tags, ","), p+".squashfs", p+".manifest")
}

// noEnv is the daemon's environment: no HOME, no DOCKER_CONFIG, nothing.
func noEnv(string) string { return "" }

func TestRegistryLoginFromAuthJSONWithoutHome(t *testing.T) {
	reg := distribution.Start(t, true)
	orasRelease(t, reg, "fleet/sysext-hello", "1.0-1", "2026-01-02T03:04:05Z", "v1.0-1_trixie_amd64", "trixie_amd64")
	t.Setenv("HOME", "")
	os.Unsetenv("HOME")
	root := t.TempDir()
	authJSON := filepath.Join(root, "etc/sysextd/auth.json")
	if err := os.MkdirAll(filepath.Dir(authJSON), 0o755); err != nil {
		t.Fatal(err)
	}
	req := Request{Name: "hello", URL: "oci://" + reg.Host + "/fleet"}
	lookup := func() (*Release, []string, error) {
		logins, warns, err := LoadRegistryLogins(RegistryLoginFiles(authJSON, noEnv, false))
		if err != nil {
			t.Fatal(err)
		}
		o := NewOCI(HTTPOptions{}, OCIConfig{Logins: logins}, "")
		r := o.LatestAll(t.Context(), []Request{req}, trixie)["hello"]
		return r.Release, warns, r.Err
	}

	// No login anywhere: the registry, and where logins were looked for.
	_, _, err := lookup()
	var ae *RegistryAuthError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("no login: %v, want a 401 RegistryAuthError", err)
	}
	for _, want := range []string{"registry " + reg.Host, "no login for " + reg.Host + " found in " + authJSON, "oras login --registry-config /etc/sysextd/auth.json"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no login: %q lacks %q", err, want)
		}
	}

	// The login oras writes, readable by others: used, with a warning.
	reg.AuthJSON(t, authJSON)
	if err := os.Chmod(authJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	rel, warns, err := lookup()
	if err != nil {
		t.Fatalf("with %s: %v", authJSON, err)
	}
	if rel.Version != "1.0-1" || rel.Tag != "v1.0-1" {
		t.Errorf("release %s %s, want 1.0-1 from tag v1.0-1", rel.Version, rel.Tag)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], authJSON) || !strings.Contains(warns[0], "chmod 600") {
		t.Errorf("mode 0644: warnings %q, want one naming %s", warns, authJSON)
	}
	if err := os.Chmod(authJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, warns, _ := lookup(); len(warns) != 0 {
		t.Errorf("mode 0600: warnings %q", warns)
	}
	d, err := NewOCI(HTTPOptions{}, OCIConfig{}, "").Download(t.Context(), rel.Image, t.TempDir())
	if err == nil {
		t.Errorf("a download without the login succeeded: %+v", d)
	}

	// A wrong password: the file whose login was refused, no Go map dump.
	wrong := base64.StdEncoding.EncodeToString([]byte(reg.User + ":wrong"))
	os.WriteFile(authJSON, []byte(`{"auths": {"`+reg.Host+`": {"auth": "`+wrong+`"}}}`), 0o600)
	_, _, err = lookup()
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "the login for "+reg.Host+" from "+authJSON+" was refused") || strings.Contains(err.Error(), "map[") {
		t.Errorf("wrong password: %v", err)
	}

	// A file that is not containers-auth.json is an error naming it.
	os.WriteFile(authJSON, []byte("machine x login y password z\n"), 0o600)
	if _, _, err := LoadRegistryLogins(RegistryLoginFiles(authJSON, noEnv, false)); err == nil || !strings.Contains(err.Error(), authJSON) {
		t.Errorf("malformed %s: %v", authJSON, err)
	}
}

func TestRegistryCredentialDirectory(t *testing.T) {
	reg := distribution.Start(t, true)
	orasRelease(t, reg, "sysext-hello", "1.0-1", "2026-01-02T03:04:05Z", "v1.0-1_trixie_amd64")
	creds := t.TempDir()
	reg.AuthJSON(t, filepath.Join(creds, RegistryCredential))
	env := func(k string) string {
		if k == "CREDENTIALS_DIRECTORY" {
			return creds
		}
		return ""
	}
	logins, _, err := LoadRegistryLogins(RegistryLoginFiles(filepath.Join(t.TempDir(), "auth.json"), env, false))
	if err != nil {
		t.Fatal(err)
	}
	r := NewOCI(HTTPOptions{}, OCIConfig{Logins: logins}, "").LatestAll(t.Context(),
		[]Request{{Name: "hello", URL: "oci://" + reg.Host + "/sysext-hello"}}, trixie)["hello"]
	if r.Err != nil || r.Release.Version != "1.0-1" {
		t.Fatalf("login from the registry-auth credential: %+v", r)
	}
}

func TestOrasPushedLayoutAndTags(t *testing.T) {
	reg := distribution.Start(t, false)
	repo := "sysext-hello"
	orasRelease(t, reg, repo, "2.0-1", "2026-02-01T00:00:00Z", "v2.0-1_trixie_amd64", "trixie_amd64")
	// An older release pushed later, moving trixie_amd64 back by hand.
	orasRelease(t, reg, repo, "1.0-1", "2026-01-01T00:00:00Z", "v1.0-1_trixie_amd64", "trixie_amd64")
	// A rebuild of 2.0-1: same version, newer BUILD_TIME.
	orasRelease(t, reg, repo, "2.0-1", "2026-02-03T00:00:00Z", "v2.0-1-rebuild_trixie_amd64")
	// Another host's release is not this host's.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o644)
	reg.Oras(t, dir, "push", reg.Host+"/"+repo+":v9_forky_amd64", "x")

	o := NewOCI(HTTPOptions{}, OCIConfig{}, t.TempDir())
	req := Request{Name: "hello", URL: "oci://" + reg.Host + "/" + repo}
	r := o.LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.Release.Version != "2.0-1" || r.Release.BuildTime != "2026-02-03T00:00:00Z" || r.Release.Tag != "v2.0-1-rebuild" {
		t.Errorf("offered %s %s (tag %s), want the 2.0-1 rebuild whatever trixie_amd64 says", r.Release.Version, r.Release.BuildTime, r.Release.Tag)
	}
	d, err := o.Download(t.Context(), r.Release.Image, t.TempDir())
	if err != nil || d.SHA256 != r.Release.Image.Digest {
		t.Errorf("download of the oras-pushed image: %+v, %v", d, err)
	}
	if c, err := o.Cached(req, trixie); err != nil || c.Tag != "v2.0-1-rebuild" {
		t.Errorf("Cached: %+v, %v", c, err)
	}

	// pin: the per-release tag holding that version.
	pinned := req
	pinned.Version = "1.0-1"
	if r := o.LatestAll(t.Context(), []Request{pinned}, trixie)["hello"]; r.Err != nil || r.Release.Tag != "v1.0-1" {
		t.Errorf("pinned to 1.0-1: %+v", r)
	}
	pinned.Version = "3.0"
	if r := o.LatestAll(t.Context(), []Request{pinned}, trixie)["hello"]; !errors.Is(r.Err, ErrNoAsset) || !strings.Contains(r.Err.Error(), "PACKAGE_VERSION 3.0") {
		t.Errorf("pinned to a version no tag holds: %v", r.Err)
	}

	// A wrong layout is refused naming the tag and layer names expected.
	reg.Oras(t, dir, "push", reg.Host+"/sysext-bad:v1_trixie_amd64", "x")
	r = o.LatestAll(t.Context(), []Request{{Name: "bad", URL: "oci://" + reg.Host + "/sysext-bad"}}, trixie)["bad"]
	for _, want := range []string{"TAG_trixie_amd64", "sysext-bad_trixie_amd64.squashfs", "sysext-bad_trixie_amd64.manifest", "v1_trixie_amd64 has layers titled [x]"} {
		if r.Err == nil || !strings.Contains(r.Err.Error(), want) {
			t.Errorf("wrong layout: %v, want it to name %q", r.Err, want)
		}
	}
	if !errors.Is(r.Err, ErrNoAsset) {
		t.Errorf("wrong layout: %v, want ErrNoAsset", r.Err)
	}
}

// countingSource counts the downloads mirror asks of its source.
type countingSource struct {
	Source
	n atomic.Int32
}

func (c *countingSource) Download(ctx context.Context, a Asset, dir string) (*Downloaded, error) {
	c.n.Add(1)
	return c.Source.Download(ctx, a, dir)
}

func TestMirrorToRegistryMonotonicAndIncremental(t *testing.T) {
	reg := distribution.Start(t, false)
	base := t.TempDir()
	writeMirror(t, base, helloFiles())
	m := NewMirror(HTTPOptions{}, "")
	v1 := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: "file://" + base}}, trixie)["hello"].Release
	if v1 == nil {
		t.Fatal("no release in the mirror")
	}
	// A newer release, 2.0-1, reaches the registry first (oras, by CI).
	orasRelease(t, reg, "spamtagger/sysext-hello", "2.0-1", "2026-02-01T00:00:00Z", "v2.0-1_trixie_amd64", "trixie_amd64")

	o := NewOCI(HTTPOptions{}, OCIConfig{}, "")
	ns := "oci://" + reg.Host + "/spamtagger"
	src := &countingSource{Source: m}
	if err := o.PushRelease(t.Context(), ns, "sysext-hello", v1, trixie, src, t.TempDir()); err != nil {
		t.Fatalf("mirror 1.0-1: %v", err)
	}
	if n := src.n.Load(); n != 3 {
		t.Errorf("first mirror downloaded %d assets, want 3", n)
	}
	moving := o.movingRelease(t.Context(), mustRepo(t, o, ns+"/sysext-hello"), mustRef(t, ns+"/sysext-hello"), trixie)
	if moving == nil || moving.Version != "2.0-1" {
		t.Errorf("after mirroring the older 1.0-1, trixie_amd64 names %+v, want 2.0-1 still", moving)
	}
	// Again: the registry has every blob, so nothing is downloaded.
	src.n.Store(0)
	if err := o.PushRelease(t.Context(), ns, "sysext-hello", v1, trixie, src, t.TempDir()); err != nil {
		t.Fatalf("mirror 1.0-1 again: %v", err)
	}
	if n := src.n.Load(); n != 0 {
		t.Errorf("second mirror downloaded %d assets, want 0 (the target has them)", n)
	}
	r := o.LatestAll(t.Context(), []Request{{Name: "hello", URL: ns}}, trixie)["hello"]
	if r.Err != nil || r.Release.Version != "2.0-1" {
		t.Errorf("offered %+v, want 2.0-1", r)
	}
}

func TestRegistryTLSFailureNamesCAStore(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	o := NewOCI(HTTPOptions{}, OCIConfig{}, "")
	ref := mustRef(t, "oci://"+host+"/sysext-hello")
	repo := mustRepo(t, o, ref.URL)
	repo.PlainHTTP = false // loopback is plain HTTP by default; this one speaks TLS
	_, err := o.manifest(t.Context(), repo, ref, "trixie_amd64")
	var te *TLSError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "update-ca-certificates") || !strings.Contains(err.Error(), host) {
		t.Errorf("self-signed registry: %v, want a TLSError naming %s and update-ca-certificates", err, host)
	}
	if IsNetwork(err) {
		t.Errorf("a certificate failure counted as a network failure (GitHub's hint, retries): %v", err)
	}
}

func TestInsecureRegistryOnlyThoseListed(t *testing.T) {
	var warned []string
	o := NewOCI(HTTPOptions{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusTeapot, Body: http.NoBody, Request: r}, nil
	})}, OCIConfig{Insecure: []string{"10.0.0.5:5000"}, Warn: func(m string) { warned = append(warned, m) }}, "")
	c := o.client.Client
	if resp, err := c.Get("http://10.0.0.5:5000/v2/"); err != nil || resp.StatusCode != http.StatusTeapot {
		t.Errorf("listed registry over http: %v", err)
	}
	if _, err := c.Get("http://10.0.0.6:5000/v2/"); !errors.Is(err, ErrInsecure) {
		t.Errorf("unlisted registry over http: %v, want ErrInsecure", err)
	}
	for _, h := range []string{"10.0.0.5:5000", "10.0.0.6:5000"} {
		r, err := o.repo(mustRef(t, "oci://"+h+"/x"))
		if err != nil {
			t.Fatal(err)
		}
		if r.PlainHTTP != (h == "10.0.0.5:5000") {
			t.Errorf("%s: PlainHTTP %v", h, r.PlainHTTP)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "10.0.0.5:5000") || !strings.Contains(warned[0], "plain HTTP") {
		t.Errorf("warnings %q, want one for the insecure registry", warned)
	}
	if NewOCI(HTTPOptions{}, OCIConfig{}, "").insecure["10.0.0.5:5000"] {
		t.Error("plain http allowed by default")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mustRef(t *testing.T, u string) sourceref.Ref {
	t.Helper()
	ref, err := sourceref.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func mustRepo(t *testing.T, o *OCI, u string) *remote.Repository {
	t.Helper()
	r, err := o.repo(mustRef(t, u))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRegistryBearerToken: a registry that hands out bearer tokens (as
// ghcr.io and Harbor do) serves the login in auth.json through oras-go's
// token exchange; a wrong password is refused naming the file.
func TestRegistryBearerToken(t *testing.T) {
	reg := distribution.StartWith(t, distribution.Token)
	orasRelease(t, reg, "sysext-hello", "1.0-1", "2026-01-02T03:04:05Z", "v1.0-1_trixie_amd64")
	authJSON := filepath.Join(t.TempDir(), "auth.json")
	reg.AuthJSON(t, authJSON)
	before := reg.Tokens.Load()
	logins, _, err := LoadRegistryLogins(RegistryLoginFiles(authJSON, noEnv, false))
	if err != nil {
		t.Fatal(err)
	}
	o := NewOCI(HTTPOptions{}, OCIConfig{Logins: logins}, "")
	req := Request{Name: "hello", URL: "oci://" + reg.Host + "/sysext-hello"}
	r := o.LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	if r.Err != nil || r.Release.Version != "1.0-1" {
		t.Fatalf("through a bearer token: %+v", r)
	}
	if _, err := o.Download(t.Context(), r.Release.Image, t.TempDir()); err != nil {
		t.Errorf("download through a bearer token: %v", err)
	}
	if reg.Tokens.Load() == before {
		t.Error("no token was issued: the bearer exchange did not happen")
	}
	wrong := base64.StdEncoding.EncodeToString([]byte(reg.User + ":wrong"))
	os.WriteFile(authJSON, []byte(`{"auths": {"`+reg.Host+`": {"auth": "`+wrong+`"}}}`), 0o600)
	logins, _, _ = LoadRegistryLogins(RegistryLoginFiles(authJSON, noEnv, false))
	r = NewOCI(HTTPOptions{}, OCIConfig{Logins: logins}, "").LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	var ae *RegistryAuthError
	if !errors.As(r.Err, &ae) || !strings.Contains(r.Err.Error(), "from "+authJSON+" was refused") || strings.Contains(r.Err.Error(), "map[") {
		t.Errorf("wrong password for the token server: %v", r.Err)
	}
}

// BenchmarkOCILookupTags: one lookup against docker-registry holding n
// releases for this host: the tag list plus one manifest GET per tag;
// the .manifest blobs come from the cache after the first run.
func BenchmarkOCILookupTags(b *testing.B) {
	reg := distribution.Start(b, false)
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("tags=%d", n), func(b *testing.B) {
			repo := fmt.Sprintf("oci://%s/n%d", reg.Host, n)
			o := NewOCI(HTTPOptions{}, OCIConfig{}, b.TempDir())
			dir := b.TempDir()
			p := trixie.Prefix("sysext-hello")
			for i := range n {
				files := []string{filepath.Join(dir, p+".squashfs"), filepath.Join(dir, p+".manifest")}
				os.WriteFile(files[0], []byte(fmt.Sprint("image ", i)), 0o644)
				os.WriteFile(files[1], []byte(fmt.Sprintf("PACKAGE_VERSION=1.%d-1\nBUILD_TIME=2026-01-02T03:04:05Z\n", i)), 0o644)
				if err := o.PushFiles(b.Context(), repo, "sysext-hello", fmt.Sprintf("v1.%d-1", i), trixie, files); err != nil {
					b.Fatal(err)
				}
			}
			req := Request{Name: "hello", URL: repo}
			b.ResetTimer()
			for b.Loop() {
				r := o.LatestAll(b.Context(), []Request{req}, trixie)["hello"]
				if r.Err != nil || r.Release.Version != fmt.Sprintf("1.%d-1", n-1) {
					b.Fatalf("%+v", r)
				}
			}
		})
	}
}

// TestMirrorToRegistryCarriesRollout (issue 22): a release's release.json,
// which holds its rollout (phased_percentage, withdrawn), travels to the
// registry as a layer of the artifact, so that an appliance behind the
// registry verifies and obeys it as one behind GitHub does; the artifact
// repeats the rollout in its annotations for people.
func TestMirrorToRegistryCarriesRollout(t *testing.T) {
	reg := distribution.Start(t, false)
	base := t.TempDir()
	files := helloFiles()
	files["release.json"] = []byte(`{"version":"1.0-1","phased_percentage":10,"withdrawn":true}`)
	writeMirror(t, base, files)
	m := NewMirror(HTTPOptions{}, "")
	rel := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: "file://" + base}}, trixie)["hello"].Release
	if rel == nil || rel.Assets["release.json"].Name == "" {
		t.Fatalf("the mirror's release lacks release.json: %+v", rel)
	}
	o := NewOCI(HTTPOptions{}, OCIConfig{}, "")
	ns := "oci://" + reg.Host + "/spamtagger"
	if err := o.PushRelease(t.Context(), ns, "sysext-hello", rel, trixie, m, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	r := o.LatestAll(t.Context(), []Request{{Name: "hello", URL: ns}}, trixie)["hello"]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	a, ok := r.Release.Assets["release.json"]
	if !ok {
		t.Fatalf("the registry's release has no release.json: %v", r.Release.Assets)
	}
	b, err := o.Fetch(t.Context(), a)
	if err != nil || string(b) != string(files["release.json"]) {
		t.Errorf("release.json from the registry = %q, %v", b, err)
	}
	ref := mustRef(t, ns+"/sysext-hello")
	body, err := o.manifest(t.Context(), mustRepo(t, o, ns+"/sysext-hello"), ref, OCITag(rel.Tag, trixie))
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(body, &man); err != nil {
		t.Fatal(err)
	}
	if man.Annotations[OCIPhasedAnnotation] != "10" || man.Annotations[OCIWithdrawnAnnotation] != "true" {
		t.Errorf("annotations %v, want phased 10 and withdrawn", man.Annotations)
	}
	var mt string
	for _, l := range man.Layers {
		if l.Annotations[ocispec.AnnotationTitle] == "release.json" {
			mt = l.MediaType
		}
	}
	if mt != OCIReleaseMediaType {
		t.Errorf("release.json layer media type %q, want %q", mt, OCIReleaseMediaType)
	}
}
