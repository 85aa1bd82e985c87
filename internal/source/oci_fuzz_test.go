package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// FuzzArtifactCandidate: whatever manifest a registry answers, reading it
// never panics, and what it accepts has this host's image and .manifest
// as layers with safe names and valid digests; anything else is a
// *LayoutError (a refused tag, not a failed lookup).
func FuzzArtifactCandidate(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.unknown.artifact.v1",
"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:` + strings.Repeat("a", 64) + `","size":3,
"annotations":{"org.opencontainers.image.title":"sysext-hello_trixie_amd64.squashfs"}},
{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:` + strings.Repeat("b", 64) + `","size":3,
"annotations":{"org.opencontainers.image.title":"sysext-hello_trixie_amd64.manifest"}}],
"annotations":{"org.opencontainers.image.created":"2026-01-02T03:04:05Z"}}`))
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	f.Add([]byte(`{"layers":[{"digest":"sha256:x","annotations":{"org.opencontainers.image.title":"../x"}}]}`))
	f.Add([]byte(`nonsense`))
	ref, _ := sourceref.Parse("oci://127.0.0.1:5000/sysext-hello")
	req := Request{Name: "hello", URL: ref.URL}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := artifactCandidate(req, trixie, ref, "v1_trixie_amd64", body)
		if err != nil {
			var le *LayoutError
			if !errors.As(err, &le) {
				t.Fatalf("not a LayoutError: %v", err)
			}
			return
		}
		if !c.Usable(req, trixie) || c.Tag == "" {
			t.Fatalf("accepted an unusable candidate %+v", c)
		}
		for _, a := range c.Assets {
			if !safeComponent(a.Name) || digest.Digest(a.Digest).Validate() != nil || a.Size < 0 {
				t.Fatalf("accepted asset %+v", a)
			}
		}
	})
}

// FuzzRegistryLogins: whatever a login file holds, reading it never
// panics; it is a login store or an error naming the file.
func FuzzRegistryLogins(f *testing.F) {
	f.Add([]byte(`{"auths":{"registry.example.net":{"auth":"ZmxlZXQ6czNjcmV0"}}}`))
	f.Add([]byte(`{"auths":{"r":{"auth":"!!"}}}`))
	f.Add([]byte(`{"credsStore":"x","auths":{}}`))
	f.Add([]byte(`machine x login y password z`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "auth.json")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, _, err := LoadRegistryLogins([]LoginFile{{Path: p}})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		_, _ = l.Credential(context.Background(), "registry.example.net")
	})
}
