package source

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

// forkyOnly publishes a newer release built only for forky.
func forkyOnly(s *fakegithub.Server, repo, tag string, at time.Time) {
	p := repo + "_forky_amd64"
	s.Publish("SpamTagger", repo, fakegithub.Release{Tag: tag, PublishedAt: at, Assets: []fakegithub.Asset{
		{Name: p + ".squashfs", Data: []byte("forky image")},
		{Name: p + ".manifest", Data: manifestFor(repo, "9.0-1", "forky", "amd64")},
	}})
}

func TestFallsBackToOlderReleaseWithThisHostsAsset(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1", published: time.Now().Add(-time.Hour)})
	forkyOnly(s, "sysext-hello", "t2", time.Now())
	g := newGitHub(t, s, nil)
	rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Tag != "t1" || rel.Version != "1.0-1" {
		t.Errorf("got %s %s, want t1 1.0-1", rel.Tag, rel.Version)
	}
	if st := s.Stats(); st.API != 2 {
		t.Errorf("%d API requests, want 2 (latest, then the list)", st.API)
	}
	if off, err := newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = g.opts.CacheDir }).Cached(request("sysext-hello", "sysext-hello"), trixie); err != nil || off.Tag != "t1" {
		t.Errorf("Cached after the fallback = %v, %v; want t1", off, err)
	}
	// Next time (another process, same cache) the list is asked first: one request.
	s.ResetStats()
	again, err := newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = g.opts.CacheDir }).Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil || again.Tag != "t1" {
		t.Fatalf("second lookup: %v %v", again, err)
	}
	if st := s.Stats(); st.API != 1 {
		t.Errorf("second lookup: %d API requests, want 1 (the list only)", st.API)
	}
	// A new trixie release is found, and latest is asked again after it.
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t3", version: "3.0-1", published: time.Now().Add(time.Hour)})
	rel3, err := newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = g.opts.CacheDir }).Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil || rel3.Tag != "t3" {
		t.Fatalf("after a new trixie release: %v %v, want t3", rel3, err)
	}
	s.ResetStats()
	if _, err := newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = g.opts.CacheDir }).Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie); err != nil {
		t.Fatal(err)
	}
	if reqs := s.Requests(); len(reqs) == 0 || !strings.HasSuffix(reqs[0].Path, "/releases/latest") {
		t.Errorf("after the newest release is usable again, first request %v, want latest", reqs)
	}
	// Offline, the last answer comes from the cache.
	off, err := newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = g.opts.CacheDir }).Cached(request("sysext-hello", "sysext-hello"), trixie)
	if err != nil || off.Tag != "t3" {
		t.Errorf("Cached = %v, %v; want t3", off, err)
	}
}

func TestPrereleaseOptIn(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1", published: time.Now().Add(-time.Hour)})
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t2-rc1", version: "2.0~rc1-1", prerelease: true})
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t3-draft", version: "3.0-1", draft: true, published: time.Now().Add(time.Hour)})
	g := newGitHub(t, s, nil)
	req := request("sysext-hello", "sysext-hello")
	rel, err := g.Latest(t.Context(), req, trixie)
	if err != nil || rel.Tag != "t1" {
		t.Fatalf("stable: %v %v, want t1", rel, err)
	}
	req.Prerelease = true
	rel, err = g.Latest(t.Context(), req, trixie)
	if err != nil || rel.Tag != "t2-rc1" {
		t.Fatalf("prerelease = true: %v %v, want t2-rc1 (never the draft)", rel, err)
	}
}

func TestMakeLatestFalseIsSkipped(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1", published: time.Now().Add(-time.Hour)})
	s.Publish("SpamTagger", "sysext-hello", fakegithub.Release{Tag: "t2", MakeLatest: "false", Assets: nil})
	rel, err := newGitHub(t, s, nil).Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil || rel.Tag != "t1" {
		t.Fatalf("got %v %v, want t1", rel, err)
	}
}

func TestEnterpriseServer(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1"})
	g := newGitHub(t, s, func(o *GitHubOptions) { o.Enterprise = true })
	host := strings.TrimSuffix(strings.TrimPrefix(s.URL(), "http://"), "/")
	req := Request{Name: "hello", URL: "https://" + host + "/SpamTagger/sysext-hello", Image: "sysext-hello"}
	rel, err := g.Latest(t.Context(), req, trixie)
	if err != nil || rel.Tag != "t1" {
		t.Fatalf("GHES: %v %v", rel, err)
	}
	for _, r := range s.Requests() {
		if strings.HasPrefix(r.Path, "/repos/") {
			t.Errorf("request %s went to the github.com API path, want /api/v3/", r.Path)
		}
	}
}

func TestUnverifiedAndSHA512(t *testing.T) {
	img := []byte("image bytes")
	sum := sha512.Sum512(img)
	tests := []struct {
		name           string
		asset          fakegithub.Asset
		require        bool
		wantUnverified bool
		wantErr        error
	}{
		{"no digest", fakegithub.Asset{OmitDigest: true}, false, true, nil},
		{"no digest, required", fakegithub.Asset{OmitDigest: true}, true, true, ErrUnverified},
		{"sha512", fakegithub.Asset{PublishDigest: "sha512:" + hex.EncodeToString(sum[:])}, true, false, nil},
		{"wrong sha512", fakegithub.Asset{PublishDigest: "sha512:" + strings.Repeat("0", 128)}, false, false, &DigestMismatchError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			a := tt.asset
			a.Name, a.Data = "sysext-hello_trixie_amd64.squashfs", img
			s.Publish("SpamTagger", "sysext-hello", fakegithub.Release{Tag: "t1", Assets: []fakegithub.Asset{a,
				{Name: "sysext-hello_trixie_amd64.manifest", Data: manifestFor("sysext-hello", "1.0-1", "trixie", "amd64")}}})
			g := newGitHub(t, s, func(o *GitHubOptions) { o.RequireDigest = tt.require })
			rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
			if err != nil {
				t.Fatal(err)
			}
			if rel.Image.Unverified != tt.wantUnverified {
				t.Errorf("Image.Unverified = %v, want %v", rel.Image.Unverified, tt.wantUnverified)
			}
			if len(rel.Assets) != 2 {
				t.Errorf("Assets = %d, want every asset of the release (2)", len(rel.Assets))
			}
			d, err := g.Download(t.Context(), rel.Image, t.TempDir())
			var dm *DigestMismatchError
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Download: %v", err)
			case errors.As(tt.wantErr, &dm):
				if !errors.As(err, &dm) {
					t.Fatalf("Download error = %v, want a digest mismatch", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Download error = %v, want %v", err, tt.wantErr)
				}
			default:
				if d.Unverified != tt.wantUnverified {
					t.Errorf("Downloaded.Unverified = %v, want %v", d.Unverified, tt.wantUnverified)
				}
			}
		})
	}
}

func TestSecondaryRateLimit(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1"})
	s.SetSecondaryLimit(1, 90*time.Second)
	_, err := newGitHub(t, s, nil).Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	rl, ok := IsRateLimit(err)
	if !ok {
		t.Fatalf("error = %v, want a rate limit", err)
	}
	if d := time.Until(rl.Reset); d < 80*time.Second || d > 100*time.Second {
		t.Errorf("reset in %s, want about 90 s (Retry-After)", d)
	}
}

func TestBare429OnDownloadIsRateLimit(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1"})
	g := newGitHub(t, s, nil)
	rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDownloadFault(fakegithub.FaultBare429)
	_, err = g.Download(t.Context(), rel.Image, t.TempDir())
	if _, ok := IsRateLimit(err); !ok || !IsNetwork(err) {
		t.Fatalf("error = %v, want a rate limit (exit 4)", err)
	}
}

func TestPrivateRepository(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1"})
	s.SetPrivate("SpamTagger", "sysext-hello", true)
	s.SetDownloadHost("localhost") // the CDN refuses Authorization
	_, err := newGitHub(t, s, nil).Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err == nil || !strings.Contains(err.Error(), "GITHUB_TOKEN") {
		t.Fatalf("without a token: %v, want a hint to set GITHUB_TOKEN", err)
	}
	g := newGitHub(t, s, func(o *GitHubOptions) { o.Token = "secret" })
	rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil {
		t.Fatalf("with a token: %v", err)
	}
	if _, err := g.Download(t.Context(), rel.Image, t.TempDir()); err != nil {
		t.Fatalf("download with a token through the CDN: %v", err)
	}
}

func TestNoStableReleaseHint(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1-rc", version: "1.0-1", prerelease: true})
	_, err := newGitHub(t, s, nil).Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if !errors.Is(err, ErrNoAsset) || !strings.Contains(err.Error(), "prerelease = true") {
		t.Fatalf("error = %v, want no release with a prerelease hint", err)
	}
}

func TestRenamedRepositoryRemembered(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-old", image: "sysext-hello", tag: "t1", version: "1.0-1"})
	s.Rename("SpamTagger", "sysext-old", "SpamTagger", "sysext-hello")
	cache := t.TempDir()
	mk := func() *GitHub { return newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = cache }) }
	req := request("sysext-old", "sysext-hello")
	if _, err := mk().Latest(t.Context(), req, trixie); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.API != 2 {
		t.Errorf("first lookup: %d API requests, want 2 (301, then the new name)", st.API)
	}
	s.ResetStats()
	if _, err := mk().Latest(t.Context(), req, trixie); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.API != 1 {
		t.Errorf("next process: %d API requests, want 1 (the move is remembered)", st.API)
	}
	if _, err := mk().Cached(req, trixie); err != nil {
		t.Errorf("offline under the old name: %v", err)
	}
}

// TestCrossCheck: the release.json cross-check, run before an install
// through the source's Fetch: a disagreeing release.json refuses the
// release, a malformed one is only a warning, none is fine.
func TestCrossCheck(t *testing.T) {
	p := "sysext-hello_trixie_amd64"
	tests := []struct {
		name, relJSON     string // relJSON "" = none published
		wantErr, wantWarn string
	}{
		{"agrees", `{"version": "t1", "package_versions": {"trixie_amd64": "1.0-1"}}`, "", ""},
		{"other target only", `{"version": "t1", "package_versions": {"forky_amd64": "9"}}`, "", ""},
		{"none", "", "", ""},
		{"disagrees", `{"version": "t1", "package_versions": {"trixie_amd64": "1.0-2"}}`,
			`extension sysext-hello: release t1 is inconsistent: release.json says package version "1.0-2" for trixie_amd64, ` + p + `.manifest says "1.0-1"`, ""},
		{"malformed", `{"version": "t1", "package_versions": {"trixie_amd64": }`, "", "release t1: ignoring malformed release.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			assets := []fakegithub.Asset{
				{Name: p + ".squashfs", Data: []byte("img")},
				{Name: p + ".manifest", Data: manifestFor("sysext-hello", "1.0-1", "trixie", "amd64")},
			}
			if tt.relJSON != "" {
				assets = append(assets, fakegithub.Asset{Name: "release.json", Data: []byte(tt.relJSON)})
			}
			s.Publish("SpamTagger", "sysext-hello", fakegithub.Release{Tag: "t1", Assets: assets})
			g := newGitHub(t, s, nil)
			rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
			if err != nil {
				t.Fatalf("Latest: %v", err)
			}
			if st := s.Stats(); st.Downloads != 1 {
				t.Errorf("the lookup made %d downloads, want 1 (the .manifest)", st.Downloads)
			}
			warn, err := CrossCheck(t.Context(), rel, trixie, g.Fetch)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("CrossCheck error = %v, want %q", err, tt.wantErr)
			}
			if tt.wantWarn == "" && warn != "" || !strings.Contains(warn, tt.wantWarn) {
				t.Errorf("CrossCheck warning = %q, want %q", warn, tt.wantWarn)
			}
		})
	}
}

func TestDrippingDownloadFailsFast(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1", image1: make([]byte, 4096)})
	g := newGitHub(t, s, func(o *GitHubOptions) { o.MinRate = 1000; o.RateWindow = time.Second })
	rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil {
		t.Fatal(err)
	}
	s.SetFaults(fakegithub.Faults{Download: fakegithub.FaultDrip, DripEvery: 200 * time.Millisecond})
	start := time.Now()
	_, err = g.Download(t.Context(), rel.Image, t.TempDir())
	if !errors.Is(err, ErrTooSlow) || !IsNetwork(err) {
		t.Fatalf("error = %v, want ErrTooSlow as a network failure", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %s, want about one rate window (1 s)", el)
	}
}

func TestDownloadDeadline(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1.0-1", image1: make([]byte, 4096)})
	g := newGitHub(t, s, func(o *GitHubOptions) { o.MinRate = 1; o.Deadline = 500 * time.Millisecond })
	rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil {
		t.Fatal(err)
	}
	s.SetFaults(fakegithub.Faults{Download: fakegithub.FaultDrip, DripEvery: 50 * time.Millisecond})
	_, err = g.Download(t.Context(), rel.Image, t.TempDir())
	if !errors.Is(err, ErrTooSlow) || !IsNetwork(err) {
		t.Fatalf("error = %v, want ErrTooSlow (deadline) as a network failure", err)
	}
}
