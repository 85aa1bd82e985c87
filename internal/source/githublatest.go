package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v93/github"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Latest returns the newest release of req that is not a draft, not a
// prerelease (unless req.Prerelease) and has assets for t. It costs one
// (conditional) API request when the latest release is usable, two when it
// is not (a release built only for another codename) and the release list
// is needed;
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
	owner, repo, err := ParseRepoURL(req.URL, g.hosts()...)
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
		return nil, fmt.Errorf("looking up releases of %s/%s for %s: skipped after an earlier failure: %w", owner, repo, req.Name, err)
	}
	cands, err := g.candidates(ctx, req, t, owner, repo)
	br.observe(err) // before releasing the slot, so no waiting lookup misses it
	<-g.apiSem
	if err != nil {
		return nil, err
	}
	return g.pick(ctx, req, t, owner, repo, cands, false)
}

// candidates asks for the latest release (one conditional request) and,
// only when that one is not usable for t (no build for this codename, or
// prereleases are wanted) or req skips it, lists the releases (one more).
// A 404 on latest is followed by the list too, to say why.
func (g *GitHub) candidates(ctx context.Context, req Request, t Target, owner, repo string) ([]Candidate, error) {
	where := owner + "/" + repo
	listKey := strings.ToLower(where) + "|" + t.Prefix(req.ImageName())
	if !req.Prerelease && !g.cache.flag(listKey) {
		rel, resp, err := g.client.Repositories.GetLatestRelease(ctx, owner, repo)
		err = Classify(err)
		if err == nil {
			c := candidate(rel)
			if resp != nil {
				g.log.Debug("latest release", "extension", req.Name, "repo", where, "tag", c.Tag,
					"not_modified", resp.Header.Get(notModifiedHeader) != "", "rate_remaining", resp.Rate.Remaining)
			}
			if c.Usable(req, t) && !req.Skips(c.Tag) {
				return []Candidate{c}, nil
			}
		} else if !isStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("getting latest release of %s for %s: %w", where, req.Name, err)
		}
	}
	rels, _, err := g.client.Repositories.ListReleases(ctx, owner, repo, &github.ListOptions{PerPage: listPerPage})
	err = Classify(err)
	if isStatus(err, http.StatusNotFound) {
		return nil, fmt.Errorf("listing releases of %s for %s: %w (%s)", where, req.Name, err, g.notFoundHint())
	}
	if err != nil {
		return nil, fmt.Errorf("listing releases of %s for %s: %w", where, req.Name, err)
	}
	cands := make([]Candidate, 0, len(rels))
	for _, r := range rels {
		cands = append(cands, candidate(r))
	}
	if !req.Prerelease {
		// Remember whether the newest stable release lacks this host's
		// build: then the list is asked first next time, so that a
		// repository whose latest release is for another codename costs
		// one request per check, not two.
		g.cache.setFlag(listKey, !newestStableUsable(cands, req, t))
	}
	return cands, nil
}

// newestStableUsable reports whether the newest non-draft, non-prerelease
// release of cands is usable for t.
func newestStableUsable(cands []Candidate, req Request, t Target) bool {
	for i := range cands {
		if cands[i].Draft || cands[i].Prerelease {
			continue
		}
		return cands[i].Usable(req, t)
	}
	return false
}

// listPerPage bounds the fallback to the newest releases: an extension
// whose last build for this host is older than that many releases is not
// found.
const listPerPage = 30

func (g *GitHub) notFoundHint() string {
	if g.opts.Token == "" {
		return "the repository does not exist, or it is private: set GITHUB_TOKEN or token_file"
	}
	return "the repository does not exist, or the token cannot read it"
}

func isStatus(err error, status int) bool {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == status {
		return true
	}
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

func candidate(rel *github.RepositoryRelease) Candidate {
	return Candidate{Tag: rel.GetTagName(), Draft: rel.GetDraft(), Prerelease: rel.GetPrerelease(), Published: rel.GetPublishedAt().Time,
		Assets: assetsOf(rel)}
}

// assetsOf is the assets of rel, for the reader and the publisher alike.
func assetsOf(rel *github.RepositoryRelease) []Asset {
	var out []Asset
	for _, a := range rel.Assets {
		out = append(out, Asset{
			ID:         a.GetID(),
			Name:       a.GetName(),
			URL:        a.GetURL(),
			BrowserURL: a.GetBrowserDownloadURL(),
			Size:       int64(a.GetSize()),
			Digest:     a.GetDigest(),
		})
	}
	return out
}

// pick chooses among cands and resolves the release.
func (g *GitHub) pick(ctx context.Context, req Request, t Target, owner, repo string, cands []Candidate, offline bool) (*Release, error) {
	where := owner + "/" + repo
	c, err := Pick(cands, req, t, where)
	if err != nil {
		return nil, err
	}
	base := Release{Repo: where, Origin: req.URL, Kind: sourceref.KindGitHub}
	rel, err := Resolve(ctx, req, t, c, base, func(ctx context.Context, a Asset) ([]byte, error) {
		return g.small(ctx, a, offline)
	})
	if err != nil {
		return nil, err
	}
	return rel, nil
}

// LatestAll runs Latest for every request, at most GitHubOptions.Parallel API
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
	owner, repo, err := ParseRepoURL(req.URL, g.hosts()...)
	if err != nil {
		return nil, fmt.Errorf("extension %s: %w", req.Name, err)
	}
	var cands []Candidate
	if !req.Prerelease {
		if rel, ok := g.cachedJSON(fmt.Sprintf("repos/%s/%s/releases/latest", owner, repo), ""); ok {
			var r cachedRelease
			if err := json.Unmarshal(rel, &r); err == nil {
				if c := r.candidate(); c.Usable(req, t) && !req.Skips(c.Tag) {
					cands = []Candidate{c}
				}
			}
		}
	}
	if cands == nil {
		body, ok := g.cachedJSON(fmt.Sprintf("repos/%s/%s/releases", owner, repo), fmt.Sprintf("per_page=%d", listPerPage))
		if !ok {
			return nil, fmt.Errorf("extension %s: %w", req.Name, ErrNotCached)
		}
		var rels []cachedRelease
		if err := json.Unmarshal(body, &rels); err != nil {
			return nil, fmt.Errorf("extension %s: decoding cached releases: %w", req.Name, err)
		}
		for _, r := range rels {
			cands = append(cands, r.candidate())
		}
	}
	return g.pick(context.Background(), req, t, owner, repo, cands, true)
}

// cachedJSON is the remembered body of an API GET of path?query.
func (g *GitHub) cachedJSON(path, query string) ([]byte, bool) {
	u := g.base.ResolveReference(&url.URL{Path: path, RawQuery: query})
	ent, ok := g.cache.release(cacheKey(u))
	return ent.Body, ok
}

// cachedRelease is the part of a cached release answer Cached needs:
// decoding only these fields keeps a warm list of 100 cheap.
type cachedRelease struct {
	TagName     string    `json:"tag_name"`
	Draft       bool      `json:"draft"`
	Prerelease  bool      `json:"prerelease"`
	PublishedAt time.Time `json:"published_at"`
	Assets      []struct {
		ID                 int64  `json:"id"`
		Name               string `json:"name"`
		URL                string `json:"url"`
		BrowserDownloadURL string `json:"browser_download_url"`
		Size               int64  `json:"size"`
		Digest             string `json:"digest"`
	} `json:"assets"`
}

func (r *cachedRelease) candidate() Candidate {
	c := Candidate{Tag: r.TagName, Draft: r.Draft, Prerelease: r.Prerelease, Published: r.PublishedAt}
	for _, a := range r.Assets {
		c.Assets = append(c.Assets, Asset{ID: a.ID, Name: a.Name, URL: a.URL, BrowserURL: a.BrowserDownloadURL, Size: a.Size, Digest: a.Digest})
	}
	return c
}
