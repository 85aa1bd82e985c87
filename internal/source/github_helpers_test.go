package source

import (
	"fmt"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

// manifestFor is an extension-release file as the template writes it.
func manifestFor(image, version, codename, arch string) []byte {
	return fmt.Appendf(nil, `ID=debian
VERSION_ID="13"
NAME=%q
PACKAGE="hello"
PACKAGE_VERSION=%q
ARCH=%s
ARCHITECTURE=x86-64
VERSION_CODENAME=%s
BUILD_TIME="2026-01-02T03:04:05Z"
REPOSITORY="https://github.com/SpamTagger/%s"
`, image, version, arch, codename, image)
}

// ext describes a release the helper publishes.
type ext struct {
	repo, image, tag, version string
	relJSONVersion            string // "" = same as version; "-" = no release.json
	image1                    []byte // image bytes, default a small fixed payload
	published                 time.Time
	draft, prerelease         bool
}

func publish(s *fakegithub.Server, e ext) {
	prefix := e.image + "_trixie_amd64"
	img := e.image1
	if img == nil {
		img = []byte("squashfs image of " + e.image + " " + e.version)
	}
	assets := []fakegithub.Asset{
		{Name: prefix + ".squashfs", Data: img},
		{Name: prefix + ".manifest", Data: manifestFor(e.image, e.version, "trixie", "amd64"), ContentType: "text/plain"},
		{Name: e.image + "_trixie_arm64.squashfs", Data: []byte("arm image")},
		{Name: e.image + "_trixie_arm64.manifest", Data: manifestFor(e.image, e.version, "trixie", "arm64")},
	}
	if e.relJSONVersion != "-" {
		v := e.relJSONVersion
		if v == "" {
			v = e.version
		}
		assets = append(assets, fakegithub.Asset{Name: "release.json", ContentType: "application/json", Data: fmt.Appendf(nil,
			`{"version": %q, "date": "2026-01-02", "package_versions": {"trixie_amd64": %q, "trixie_arm64": %q}}`, e.tag, v, v)})
	}
	s.Publish("SpamTagger", e.repo, fakegithub.Release{
		Tag: e.tag, Draft: e.draft, Prerelease: e.prerelease, PublishedAt: e.published, Assets: assets,
	})
}

func request(repo, image string) Request {
	return Request{Name: repo, URL: "https://github.com/SpamTagger/" + repo, Image: image}
}

// newFake starts a fake GitHub closed at the end of the test.
func newFake(t testing.TB) *fakegithub.Server {
	t.Helper()
	s := fakegithub.New()
	t.Cleanup(s.Close)
	return s
}

// newGitHub returns a source pointed at s with a cache in a temp dir.
func newGitHub(t testing.TB, s *fakegithub.Server, mod func(*GitHubOptions)) *GitHub {
	t.Helper()
	opts := GitHubOptions{APIBase: s.URL(), CacheDir: t.TempDir()}
	if mod != nil {
		mod(&opts)
	}
	g, err := NewGitHub(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}
