package source

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

func TestParseRepoURL(t *testing.T) {
	tests := []struct {
		name, in    string
		owner, repo string
		wantErr     bool
	}{
		{"plain", "https://github.com/SpamTagger/sysext-hello", "SpamTagger", "sysext-hello", false},
		{"trailing slash", "https://github.com/SpamTagger/sysext-hello/", "SpamTagger", "sysext-hello", false},
		{"dot git", "https://github.com/SpamTagger/sysext-hello.git", "SpamTagger", "sysext-hello", false},
		{"dots in name", "https://github.com/a.b/c.d", "a.b", "c.d", false},
		{"http", "http://github.com/SpamTagger/sysext-hello", "", "", true},
		{"other host", "https://gitlab.com/SpamTagger/sysext-hello", "", "", true},
		{"owner only", "https://github.com/SpamTagger", "", "", true},
		{"extra path", "https://github.com/SpamTagger/x/releases", "", "", true},
		{"empty", "", "", "", true},
		{"not a url", "SpamTagger/sysext-hello", "", "", true},
		{"query", "https://github.com/a/b?x=1", "", "", true},
		{"dot dot", "https://github.com/a/..", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner, repo, err := ParseRepoURL(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseRepoURL(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if owner != tt.owner || repo != tt.repo {
				t.Errorf("ParseRepoURL(%q) = %q, %q, want %q, %q", tt.in, owner, repo, tt.owner, tt.repo)
			}
		})
	}
}

func TestLatest(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name        string
		exts        []ext
		target      Target
		wantTag     string
		wantVersion string
		wantErr     string // substring; "" = success
		wantNoAsset bool
	}{
		{
			name: "newest stable chosen, draft and prerelease skipped",
			exts: []ext{
				{tag: "2026.01.01-0900", version: "1.0-1", published: now.Add(-3 * time.Hour)},
				{tag: "2026.02.01-0900", version: "2.0-1", published: now.Add(-2 * time.Hour)},
				{tag: "2026.03.01-0900", version: "3.0-1", published: now.Add(-time.Hour), prerelease: true},
				{tag: "2026.04.01-0900", version: "4.0-1", published: now, draft: true},
			},
			target: trixie, wantTag: "2026.02.01-0900", wantVersion: "2.0-1",
		},
		{
			name:   "other arch",
			exts:   []ext{{tag: "t1", version: "1.0-1"}},
			target: Target{Codename: "trixie", Arch: "arm64"}, wantTag: "t1", wantVersion: "1.0-1",
		},
		{
			name:    "no build for codename",
			exts:    []ext{{tag: "t1", version: "1.0-1"}},
			target:  Target{Codename: "forky", Arch: "amd64"},
			wantErr: "has sysext-hello_forky_amd64.squashfs", wantNoAsset: true,
		},
		{
			// The lookup does not read release.json (CrossCheck does, at
			// install): see TestCrossCheck.
			name:   "release.json disagrees",
			exts:   []ext{{tag: "t1", version: "1.0-1", relJSONVersion: "1.0-2"}},
			target: trixie, wantTag: "t1", wantVersion: "1.0-1",
		},
		{
			name:   "no release.json is fine",
			exts:   []ext{{tag: "t1", version: "1.0-1", relJSONVersion: "-"}},
			target: trixie, wantTag: "t1", wantVersion: "1.0-1",
		},
		{
			name:    "no release at all",
			target:  trixie,
			wantErr: "404",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			for _, e := range tt.exts {
				e.repo, e.image = "sysext-hello", "sysext-hello"
				publish(s, e)
			}
			g := newGitHub(t, s, nil)
			rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Latest error = %v, want it to contain %q", err, tt.wantErr)
				}
				if got := errors.Is(err, ErrNoAsset); got != tt.wantNoAsset {
					t.Errorf("errors.Is(err, ErrNoAsset) = %v, want %v", got, tt.wantNoAsset)
				}
				if IsNetwork(err) {
					t.Errorf("IsNetwork(%v) = true, want false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Latest: %v", err)
			}
			if rel.Tag != tt.wantTag || rel.Version != tt.wantVersion {
				t.Errorf("got tag %q version %q, want %q %q", rel.Tag, rel.Version, tt.wantTag, tt.wantVersion)
			}
			wantImage := fmt.Sprintf("sysext-hello_%s_%s.squashfs", tt.target.Codename, tt.target.Arch)
			if rel.Image.Name != wantImage || rel.Image.Size == 0 || !strings.HasPrefix(rel.Image.Digest, "sha256:") {
				t.Errorf("image asset = %+v, want %s with size and digest", rel.Image, wantImage)
			}
			if got, want := rel.Fields["ARCH"], tt.target.Arch; got != want {
				t.Errorf("Fields[ARCH] = %q, want %q", got, want)
			}
			if got, want := rel.BuildTime, "2026-01-02T03:04:05Z"; got != want {
				t.Errorf("BuildTime = %q, want %q", got, want)
			}
			if got, want := rel.Repo, "SpamTagger/sysext-hello"; got != want {
				t.Errorf("Repo = %q, want %q", got, want)
			}
		})
	}
}

// TestConditionalRequests: a second run against an unchanged release costs
// one 304 per extension and downloads nothing; a new release is seen.
func TestConditionalRequests(t *testing.T) {
	s := newFake(t)
	s.SetQuota(1000, 5000)
	const n = 20
	var reqs []Request
	for i := range n {
		name := fmt.Sprintf("sysext-e%02d", i)
		publish(s, ext{repo: name, image: name, tag: "t1", version: "1.0-1"})
		reqs = append(reqs, request(name, name))
	}
	cacheDir := t.TempDir()
	mk := func() *GitHub {
		return newGitHub(t, s, func(o *GitHubOptions) { o.CacheDir = cacheDir; o.Parallel = 4 })
	}

	first := mk().LatestAll(t.Context(), reqs, trixie)
	for name, r := range first {
		if r.Err != nil {
			t.Fatalf("%s: %v", name, r.Err)
		}
	}
	st := s.Stats()
	if st.API != n {
		t.Errorf("first run: %d API requests, want %d", st.API, n)
	}
	for repo, c := range st.APIByRepo {
		if c > 1 {
			t.Errorf("first run: %d API requests for %s, want at most 1", c, repo)
		}
	}
	if want := n; st.Downloads != want {
		t.Errorf("first run: %d downloads, want %d (one .manifest per release; release.json waits for an install)", st.Downloads, want)
	}

	// A new process: only the disk cache carries over. The first run's
	// downloads changed every download_count, so GitHub's weak ETags
	// changed: no 304, but the small assets still come from the cache.
	s.ResetStats()
	second := mk().LatestAll(t.Context(), reqs, trixie)
	st = s.Stats()
	if st.API != n || st.NotModified != 0 || st.Downloads != 0 {
		t.Errorf("second run: %d API requests, %d answered 304, %d downloads, want %d, 0 and 0", st.API, st.NotModified, st.Downloads, n)
	}
	// Nothing was downloaded since: now the ETags match.
	s.ResetStats()
	unauth, _ := s.Quota()
	mk().LatestAll(t.Context(), reqs, trixie)
	st = s.Stats()
	if st.API != n || st.NotModified != n {
		t.Errorf("third run: %d API requests, %d answered 304, want %d and %d", st.API, st.NotModified, n, n)
	}
	if st.Downloads != 0 {
		t.Errorf("third run: %d downloads, want 0", st.Downloads)
	}
	// Unauthenticated, a 304 still costs quota.
	if after, _ := s.Quota(); after != unauth-n {
		t.Errorf("third run: quota %d -> %d, want %d spent on 304s", unauth, after, n)
	}
	for name, r := range second {
		if r.Err != nil || r.Release.Version != first[name].Release.Version {
			t.Errorf("%s: second run gave %+v, want version %s", name, r, first[name].Release.Version)
		}
	}

	// A new release on one repository is picked up.
	publish(s, ext{repo: "sysext-e03", image: "sysext-e03", tag: "t2", version: "2.0-1", published: time.Now().Add(time.Minute)})
	s.ResetStats()
	rel, err := mk().Latest(t.Context(), reqs[3], trixie)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Tag != "t2" || rel.Version != "2.0-1" {
		t.Errorf("after new release: tag %q version %q, want t2 2.0-1", rel.Tag, rel.Version)
	}
	if st := s.Stats(); st.NotModified != 0 || st.API != 1 {
		t.Errorf("after new release: %+v, want 1 API request and no 304", st)
	}

	// Offline view from the cache only.
	s.Close()
	cached, err := mk().Cached(reqs[3], trixie)
	if err != nil || cached.Version != "2.0-1" {
		t.Errorf("Cached = %+v, %v; want version 2.0-1", cached, err)
	}
	if _, err := mk().Cached(request("sysext-unknown", "sysext-unknown"), trixie); !errors.Is(err, ErrNotCached) {
		t.Errorf("Cached(unknown) error = %v, want ErrNotCached", err)
	}
}

func TestAPIFailures(t *testing.T) {
	reset := time.Now().Add(42 * time.Minute).Truncate(time.Second)
	tests := []struct {
		name      string
		fault     fakegithub.Fault
		wantReset bool
	}{
		{"403 rate limit", fakegithub.FaultRateLimit, true},
		{"429 rate limit", fakegithub.FaultTooMany, true},
		{"500", fakegithub.FaultServerError, false},
		{"body cut short", fakegithub.FaultCutShort, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1"})
			s.SetFaults(fakegithub.Faults{API: tt.fault, RateLimitReset: reset})
			g := newGitHub(t, s, nil)
			_, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
			if err == nil {
				t.Fatal("Latest succeeded, want an error")
			}
			if !IsNetwork(err) {
				t.Errorf("IsNetwork(%v) = false, want true", err)
			}
			rl, ok := IsRateLimit(err)
			if ok != tt.wantReset {
				t.Fatalf("IsRateLimit(%v) = %v, want %v", err, ok, tt.wantReset)
			}
			if ok && !rl.Reset.Equal(reset) {
				t.Errorf("Reset = %v, want %v", rl.Reset, reset)
			}
		})
	}
}

func TestStalledAPI(t *testing.T) {
	s := newFake(t)
	publish(s, ext{repo: "sysext-hello", image: "sysext-hello", tag: "t1", version: "1"})
	s.SetAPIFault(fakegithub.FaultStall)
	g := newGitHub(t, s, func(o *GitHubOptions) { o.StallTimeout = 300 * time.Millisecond })
	done := make(chan error, 1)
	go func() {
		_, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
		done <- err
	}()
	select {
	case err := <-done:
		if !IsNetwork(err) || !errors.Is(err, ErrStalled) {
			t.Errorf("Latest error = %v, want a network error wrapping ErrStalled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Latest did not give up on a stalled server")
	}
}

func TestConnectionRefusedIsNetwork(t *testing.T) {
	s := fakegithub.New()
	base := s.URL()
	s.Close()
	g, err := NewGitHub(GitHubOptions{APIBase: base})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if !IsNetwork(err) {
		t.Errorf("IsNetwork(%v) = false, want true", err)
	}
}

func TestNewRefusesInsecureAPI(t *testing.T) {
	for _, base := range []string{"http://api.example.com/", "ftp://127.0.0.1/", "not a url"} {
		if _, err := NewGitHub(GitHubOptions{APIBase: base}); err == nil {
			t.Errorf("NewGitHub(APIBase %q) succeeded, want an error", base)
		}
	}
	for _, base := range []string{"http://127.0.0.1:1/", "http://localhost:1", "http://[::1]:1/", "https://ghe.example.com/api/v3/"} {
		if _, err := NewGitHub(GitHubOptions{APIBase: base}); err != nil {
			t.Errorf("NewGitHub(APIBase %q): %v", base, err)
		}
	}
}

// TestLatestAllStalledServer: a server that never answers costs one stall
// timeout for the whole batch, not one per wave of parallel requests.
func TestLatestAllStalledServer(t *testing.T) {
	s := newFake(t)
	var reqs []Request
	for i := range 40 {
		name := fmt.Sprintf("sysext-s%02d", i)
		publish(s, ext{repo: name, image: name, tag: "t1", version: "1"})
		reqs = append(reqs, request(name, name))
	}
	s.SetAPIFault(fakegithub.FaultStall)
	const parallel = 4
	g := newGitHub(t, s, func(o *GitHubOptions) { o.StallTimeout = 200 * time.Millisecond; o.Parallel = parallel })
	res := g.LatestAll(t.Context(), reqs, trixie)
	if len(res) != len(reqs) {
		t.Fatalf("got %d results, want %d", len(res), len(reqs))
	}
	for name, r := range res {
		if !IsNetwork(r.Err) {
			t.Errorf("%s: error %v, want a network error", name, r.Err)
		}
	}
	if got := s.Stats().API; got > parallel {
		t.Errorf("%d API requests reached the stalled server, want at most %d", got, parallel)
	}
}

// TestLatestAllRateLimitStopsBatch: after a rate limit the rest of the batch
// fails with it without hammering the API.
func TestLatestAllRateLimitStopsBatch(t *testing.T) {
	s := newFake(t)
	var reqs []Request
	for i := range 10 {
		name := fmt.Sprintf("sysext-r%02d", i)
		publish(s, ext{repo: name, image: name, tag: "t1", version: "1"})
		reqs = append(reqs, request(name, name))
	}
	s.SetAPIFault(fakegithub.FaultRateLimit)
	g := newGitHub(t, s, func(o *GitHubOptions) { o.Parallel = 1 })
	for name, r := range g.LatestAll(t.Context(), reqs, trixie) {
		if _, ok := IsRateLimit(r.Err); !ok {
			t.Errorf("%s: error %v, want a *RateLimitError", name, r.Err)
		}
	}
	if got := s.Stats().API; got != 1 {
		t.Errorf("%d API requests after a rate limit, want 1", got)
	}
}
