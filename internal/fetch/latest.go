package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/google/go-github/v93/github"

	"github.com/spamtagger/sysextd/internal/osrelease"
)

// Latest returns the latest release of req that is neither draft nor
// prerelease, with its assets for t. It costs one (conditional) API request;
// the .manifest and release.json assets are fetched from their download URLs
// only when not cached already. Errors: *RateLimitError, network failures
// (IsNetwork), ErrNoAsset when the release has no build for t, and plain
// errors for inconsistent releases.
func (g *GitHub) Latest(ctx context.Context, req Request, t Target) (*Release, error) {
	return g.latest(ctx, req, t, nil)
}

// breaker stops a batch of lookups after the first failure that says the
// API is unreachable or rate limited, so that a server that never answers
// costs one stall timeout, not one per wave of Parallel requests.
type breaker struct {
	mu  sync.Mutex
	err error
}

func (b *breaker) tripped() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// observe trips the breaker on rate limits and transport failures (not on a
// 5xx for one repository, which says nothing about the others).
func (b *breaker) observe(err error) {
	if b == nil || err == nil {
		return
	}
	_, rl := IsRateLimit(err)
	var er *github.ErrorResponse
	var se *StatusError
	transport := IsNetwork(err) && !errors.As(err, &er) && !errors.As(err, &se)
	if rl || transport {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
}

func (g *GitHub) latest(ctx context.Context, req Request, t Target, br *breaker) (*Release, error) {
	owner, repo, err := ParseRepoURL(req.URL)
	if err != nil {
		return nil, fmt.Errorf("extension %s: %w", req.Name, err)
	}
	select {
	case g.apiSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := br.tripped(); err != nil {
		<-g.apiSem
		return nil, fmt.Errorf("getting latest release of %s/%s for %s: skipped after an earlier failure: %w", owner, repo, req.Name, err)
	}
	rel, resp, err := g.client.Repositories.GetLatestRelease(ctx, owner, repo)
	err = classify(err)
	br.observe(err) // before releasing the slot, so no waiting lookup misses it
	<-g.apiSem
	if err != nil {
		return nil, fmt.Errorf("getting latest release of %s/%s for %s: %w", owner, repo, req.Name, err)
	}
	if resp != nil {
		g.log.Debug("latest release", "extension", req.Name, "repo", owner+"/"+repo, "tag", rel.TagName,
			"not_modified", resp.Header.Get(notModifiedHeader) != "", "rate_remaining", resp.Rate.Remaining)
	}
	return g.resolve(ctx, req, t, owner, repo, rel, false)
}

// LatestAll runs Latest for every request, at most Options.Parallel API
// requests at a time, and returns one Result per Request.Name. After a rate
// limit or a transport failure (stall, timeout, refused connection) the
// lookups not yet started fail with that error instead of trying.
func (g *GitHub) LatestAll(ctx context.Context, reqs []Request, t Target) map[string]Result {
	br := &breaker{}
	out := make(map[string]Result, len(reqs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Go(func() {
			rel, err := g.latest(ctx, req, t, br)
			mu.Lock()
			out[req.Name] = Result{Release: rel, Err: err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// Cached returns what Latest returned last time for req, from the cache
// only, without any network access. It fails with ErrNotCached when the
// release or one of its small assets was never fetched.
func (g *GitHub) Cached(req Request, t Target) (*Release, error) {
	owner, repo, err := ParseRepoURL(req.URL)
	if err != nil {
		return nil, fmt.Errorf("extension %s: %w", req.Name, err)
	}
	u := g.base.ResolveReference(&url.URL{Path: fmt.Sprintf("repos/%s/%s/releases/latest", owner, repo)})
	ent, ok := g.cache.release(u.Host + u.Path)
	if !ok {
		return nil, fmt.Errorf("extension %s: %w", req.Name, ErrNotCached)
	}
	var rel github.RepositoryRelease
	if err := json.Unmarshal(ent.Body, &rel); err != nil {
		return nil, fmt.Errorf("extension %s: decoding cached release: %w", req.Name, err)
	}
	return g.resolve(context.Background(), req, t, owner, repo, &rel, true)
}

// resolve picks the assets for t from rel and reads the small ones.
func (g *GitHub) resolve(ctx context.Context, req Request, t Target, owner, repo string, rel *github.RepositoryRelease, offline bool) (*Release, error) {
	prefix := fmt.Sprintf("%s_%s_%s", req.imageName(), t.Codename, t.Arch)
	found := map[string]Asset{}
	for _, a := range rel.Assets {
		found[a.GetName()] = Asset{
			ID:         a.GetID(),
			Name:       a.GetName(),
			URL:        a.GetURL(),
			BrowserURL: a.GetBrowserDownloadURL(),
			Size:       int64(a.GetSize()),
			Digest:     a.GetDigest(),
		}
	}
	out := &Release{Name: req.Name, Repo: owner + "/" + repo, Tag: rel.TagName}
	for _, want := range []struct {
		name string
		dst  *Asset
	}{{prefix + ".squashfs", &out.Image}, {prefix + ".manifest", &out.Manifest}} {
		a, ok := found[want.name]
		if !ok {
			return nil, fmt.Errorf("extension %s: release %s of %s has no asset %s: %w",
				req.Name, rel.TagName, out.Repo, want.name, ErrNoAsset)
		}
		*want.dst = a
	}

	// Fetch the manifest and release.json side by side.
	var manifest, relJSON []byte
	var mErr, rErr error
	var wg sync.WaitGroup
	wg.Go(func() { manifest, mErr = g.small(ctx, out.Manifest, offline) })
	relAsset, hasRelJSON := found["release.json"]
	if hasRelJSON {
		wg.Go(func() { relJSON, rErr = g.small(ctx, relAsset, offline) })
	}
	wg.Wait()
	if mErr != nil {
		return nil, fmt.Errorf("extension %s: release %s: %w", req.Name, rel.TagName, mErr)
	}
	if rErr != nil {
		return nil, fmt.Errorf("extension %s: release %s: %w", req.Name, rel.TagName, rErr)
	}

	out.Fields = osrelease.Parse(manifest)
	out.Version = out.Fields["PACKAGE_VERSION"]
	out.BuildTime = out.Fields["BUILD_TIME"]
	if out.Version == "" {
		return nil, fmt.Errorf("extension %s: release %s: %s has no PACKAGE_VERSION", req.Name, rel.TagName, out.Manifest.Name)
	}
	if hasRelJSON {
		var rj struct {
			PackageVersions map[string]string `json:"package_versions"`
		}
		if err := json.Unmarshal(relJSON, &rj); err != nil {
			return nil, fmt.Errorf("extension %s: release %s: decoding release.json: %w", req.Name, rel.TagName, err)
		}
		key := t.Codename + "_" + t.Arch
		if v, ok := rj.PackageVersions[key]; ok && v != out.Version {
			return nil, fmt.Errorf("extension %s: release %s is inconsistent: release.json says package version %q for %s, %s says %q",
				req.Name, rel.TagName, v, key, out.Manifest.Name, out.Version)
		}
	}
	return out, nil
}
