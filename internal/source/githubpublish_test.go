package source

import (
	"errors"
	"slices"
	"testing"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

// TestGitHubPublisherRoundTrip: a draft is created, filled, published,
// read back by tag and as the latest, an asset replaced (delete +
// upload), and the release deleted; a missing release is ErrNotFound.
func TestGitHubPublisherRoundTrip(t *testing.T) {
	s := fakegithub.NewPublishing()
	t.Cleanup(s.Close)
	p, err := NewGitHubPublisher(s.URL(), "ghp_test", "SpamTagger", "sysext-hello")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	if _, err := p.Latest(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest of a repository without releases: %v, want ErrNotFound", err)
	}
	if _, err := p.ByTag(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ByTag of a missing tag: %v, want ErrNotFound", err)
	}

	draft, err := p.CreateDraft(ctx, "v1", "v1", "notes")
	if err != nil {
		t.Fatal(err)
	}
	if !draft.Draft || draft.Tag != "v1" || draft.ID == 0 {
		t.Fatalf("CreateDraft = %+v", draft)
	}
	if err := p.UploadBytes(ctx, draft.ID, "release.json", []byte(`{"version": "v1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Latest(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("Latest while the only release is a draft: %v, want ErrNotFound", err)
	}
	pub, err := p.PublishDraft(ctx, draft.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Draft || pub.URL == "" {
		t.Errorf("PublishDraft = %+v", pub)
	}

	latest, err := p.Latest(ctx)
	if err != nil || latest.Tag != "v1" {
		t.Fatalf("Latest = %+v, %v", latest, err)
	}
	a, ok := latest.Asset("release.json")
	if !ok {
		t.Fatalf("latest has no release.json: %+v", latest.Assets)
	}
	if b, err := p.Download(ctx, a, 1<<20); err != nil || string(b) != `{"version": "v1"}` {
		t.Fatalf("Download = %q, %v", b, err)
	}
	if b, err := p.Download(ctx, a, 4); err != nil || string(b) != `{"ve` {
		t.Errorf("Download with a limit of 4 = %q, %v", b, err)
	}

	byTag, err := p.ByTag(ctx, "v1")
	if err != nil || byTag.ID != draft.ID {
		t.Fatalf("ByTag = %+v, %v", byTag, err)
	}
	if err := p.DeleteAsset(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.UploadBytes(ctx, byTag.ID, "release.json", []byte(`{"version": "v1", "withdrawn": true}`)); err != nil {
		t.Fatal(err)
	}
	assets, _, _ := s.ReleaseAssets("SpamTagger", "sysext-hello", "v1")
	if got := string(assets["release.json"]); got != `{"version": "v1", "withdrawn": true}` {
		t.Errorf("release.json after the replacement = %q", got)
	}

	if err := p.DeleteRelease(ctx, draft.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.ReleaseAssets("SpamTagger", "sysext-hello", "v1"); ok {
		t.Error("the release is still there after DeleteRelease")
	}
	want := []string{"create v1 draft=true", "upload v1 release.json", "edit v1 draft=false",
		"delete-asset v1 release.json", "upload v1 release.json"}
	if got := s.Events(); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("events = %v, want them to start with %v", got, want)
	}
}

// TestGitHubPublisherNeedsToken: without a token the fake refuses writes,
// and the error is not a not-found.
func TestGitHubPublisherNeedsToken(t *testing.T) {
	s := fakegithub.NewPublishing()
	t.Cleanup(s.Close)
	p, err := NewGitHubPublisher(s.URL(), "", "SpamTagger", "sysext-hello")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateDraft(t.Context(), "v1", "v1", ""); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("CreateDraft without a token: %v, want a refusal", err)
	}
}

// TestUploadBase: assets go to uploads.github.com for github.com (the API
// host answers uploads with 404), to /api/uploads/ on GitHub Enterprise
// Server, and to the base itself anywhere else.
func TestUploadBase(t *testing.T) {
	for in, want := range map[string]string{
		DefaultGitHubAPI:                    "https://uploads.github.com/",
		"https://api.github.com":            "https://uploads.github.com/",
		"https://ghe.example.com/api/v3/":   "https://ghe.example.com/api/uploads/",
		"http://127.0.0.1:8080/":            "http://127.0.0.1:8080/",
		"https://proxy.example.com/github/": "https://proxy.example.com/github/",
	} {
		if got := UploadBase(in); got != want {
			t.Errorf("UploadBase(%q) = %q, want %q", in, got, want)
		}
	}
}
