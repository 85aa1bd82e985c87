package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Router is the one Source the engine uses. It parses each request's URL
// and mirrors, hands the lookup to the provider of that kind, and falls
// through to the next place when one is unreachable or rate limited
// (IsNetwork), or, offline, has nothing cached. Downloads and fetches go
// to the provider that answered the release (Asset.Origin).
//
// Providers are registered here and nowhere else: GitHub by host
// (github.com and each GHES host), and one provider per other kind.
type Router struct {
	// GitHub maps a GitHub web host ("github.com", a GHES host) to its
	// client.
	GitHub map[string]Provider
	// Kinds holds the provider of every other kind (sourceref.KindMirror, sourceref.KindOCI,
	// sourceref.KindLocal).
	Kinds map[sourceref.Kind]Provider
	// Mirrors are tried after every request's own mirrors.
	Mirrors []string
	// MirrorsFirst tries the mirrors before the request's URL.
	MirrorsFirst bool
	Log          *slog.Logger

	mu       sync.Mutex
	resolved map[string]resolvedAt // Asset.Origin + "\x00" + Asset.Name -> how it was found
}

// resolvedAt remembers the request and target an asset was found for, so
// that a download that fails for the network can be retried at the next
// place.
type resolvedAt struct {
	req    Request
	target Target
}

func assetKey(a Asset) string { return a.Origin + "\x00" + a.Name }

func (r *Router) remember(rel *Release, q Request, t Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resolved == nil {
		r.resolved = map[string]resolvedAt{}
	}
	for _, a := range rel.Assets {
		r.resolved[assetKey(a)] = resolvedAt{req: q, target: t}
	}
	r.resolved[assetKey(rel.Image)] = resolvedAt{req: q, target: t}
}

// Places returns where req is looked up, in order: its URL and mirrors,
// then the global mirrors; mirrors first when MirrorsFirst. Duplicates are
// dropped.
func (r *Router) Places(req Request) []string {
	mirrors := append(append([]string(nil), req.Mirrors...), r.Mirrors...)
	var all []string
	if r.MirrorsFirst {
		all = append(mirrors, req.URL)
	} else {
		all = append([]string{req.URL}, mirrors...)
	}
	seen := map[string]bool{}
	var out []string
	for _, u := range all {
		if u = strings.TrimSpace(u); u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

func (r *Router) hosts() []string {
	var hs []string
	for h := range r.GitHub {
		if h != "github.com" {
			hs = append(hs, h)
		}
	}
	return hs
}

// provider returns the provider for a source URL.
func (r *Router) provider(u string) (Provider, error) {
	ref, err := sourceref.Parse(u, r.hosts()...)
	if err != nil {
		return nil, err
	}
	if ref.Kind == sourceref.KindGitHub {
		if p := r.GitHub[ref.Host]; p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("no GitHub client configured for %s", ref.Host)
	}
	if p := r.Kinds[ref.Kind]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("source %s: %s sources are not available here", u, ref.Kind)
}

// fallThrough reports whether the next place should be tried after err.
func fallThrough(err error) bool {
	return IsNetwork(err) || errors.Is(err, ErrNotCached)
}

// LatestAll looks every request up at its first place, then retries the
// ones that failed with a network error or a rate limit at their next
// place, until each has an answer or no place is left. The error kept is
// the first place's, so a GitHub problem is not hidden by a mirror's.
func (r *Router) LatestAll(ctx context.Context, reqs []Request, t Target) map[string]Result {
	out := make(map[string]Result, len(reqs))
	places := make(map[string][]string, len(reqs))
	pending := make([]Request, 0, len(reqs))
	for _, q := range reqs {
		places[q.Name] = r.Places(q)
		pending = append(pending, q)
	}
	for round := 0; len(pending) > 0; round++ {
		batches := map[Provider][]Request{}
		for _, q := range pending {
			ps := places[q.Name]
			if round >= len(ps) {
				continue
			}
			p, err := r.provider(ps[round])
			if err != nil {
				r.keep(out, q.Name, ps[round], Result{Err: fmt.Errorf("extension %s: %w", q.Name, err)})
				continue
			}
			qq := q
			qq.URL = ps[round]
			batches[p] = append(batches[p], qq)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for p, qs := range batches {
			wg.Go(func() {
				res := p.LatestAll(ctx, qs, t)
				mu.Lock()
				defer mu.Unlock()
				for _, q := range qs {
					if rel := res[q.Name].Release; rel != nil {
						orig := q
						for _, o := range reqs {
							if o.Name == q.Name {
								orig = o
							}
						}
						r.remember(rel, orig, t)
					}
					if round > 0 && res[q.Name].Err == nil {
						r.log().Info("extension "+q.Name+": using mirror "+q.URL+" after: "+out[q.Name].Err.Error(), "extension", q.Name, "mirror", q.URL)
						out[q.Name] = res[q.Name]
						continue
					}
					r.keep(out, q.Name, q.URL, res[q.Name])
				}
			})
		}
		wg.Wait()
		next := pending[:0]
		for _, q := range pending {
			if res := out[q.Name]; res.Err != nil && fallThrough(res.Err) && round+1 < len(places[q.Name]) && ctx.Err() == nil {
				next = append(next, q)
			}
		}
		pending = next
	}
	return out
}

// keep records res (the answer of place) for name. When an earlier place
// already failed, its error stays the one that counts (a GitHub problem
// is not hidden by a mirror's), and the mirror's is added to its message:
// a mirror that refuses (a 401, a missing image) says why.
func (r *Router) keep(out map[string]Result, name, place string, res Result) {
	if prev, ok := out[name]; ok && prev.Err != nil && res.Err != nil {
		out[name] = Result{Err: fmt.Errorf("%w; then from %s: %s", prev.Err, place, strings.TrimPrefix(res.Err.Error(), "extension "+name+": "))}
		return
	}
	if res.Release == nil && res.Err == nil {
		res.Err = fmt.Errorf("extension %s: no answer", name)
	}
	out[name] = res
}

// Cached answers from the first place that has the release cached.
func (r *Router) Cached(req Request, t Target) (*Release, error) {
	var first error
	for _, u := range r.Places(req) {
		p, err := r.provider(u)
		if err == nil {
			q := req
			q.URL = u
			var rel *Release
			if rel, err = p.Cached(q, t); err == nil {
				return rel, nil
			}
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("extension %s: %w", req.Name, ErrNotCached)
	}
	return nil, first
}

// Download hands the download to the provider the asset came from. When
// that fails for the network or a rate limit, the same asset is looked up
// at the request's later places and downloaded from the first that has it
// with the same published digest (or, without digests, the same size).
func (r *Router) Download(ctx context.Context, a Asset, dir string) (*Downloaded, error) {
	p, err := r.assetProvider(a)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", a.Name, err)
	}
	d, err := p.Download(ctx, a, dir)
	if err == nil || !IsNetwork(err) || ctx.Err() != nil {
		return d, err
	}
	r.mu.Lock()
	at, ok := r.resolved[assetKey(a)]
	r.mu.Unlock()
	if !ok {
		return nil, err
	}
	places := r.Places(at.req)
	for i, u := range places {
		if u != a.Origin {
			continue
		}
		for _, next := range places[i+1:] {
			alt, aerr := r.alternative(ctx, at, next, a)
			if aerr != nil {
				r.log().Info("downloading "+a.Name+": mirror "+next+" cannot serve it: "+aerr.Error(), "asset", a.Name)
				continue
			}
			r.log().Info("downloading "+a.Name+" from mirror "+next+" after: "+err.Error(), "asset", a.Name)
			if d, derr := r.Download(ctx, alt, dir); derr == nil {
				return d, nil
			}
		}
	}
	return nil, err
}

// alternative finds asset a at place u.
func (r *Router) alternative(ctx context.Context, at resolvedAt, u string, a Asset) (Asset, error) {
	p, err := r.provider(u)
	if err != nil {
		return Asset{}, err
	}
	q := at.req
	q.URL = u
	res := p.LatestAll(ctx, []Request{q}, at.target)[q.Name]
	if res.Err != nil {
		return Asset{}, res.Err
	}
	alt, ok := res.Release.Assets[a.Name]
	if !ok && res.Release.Image.Name == a.Name {
		alt, ok = res.Release.Image, true
	}
	switch {
	case !ok:
		return Asset{}, fmt.Errorf("no asset %s", a.Name)
	case a.Digest != "" && alt.Digest != "" && !sameDigest(a.Digest, alt.Digest):
		return Asset{}, fmt.Errorf("asset %s has another digest there (%s, not %s)", a.Name, alt.Digest, a.Digest)
	case (a.Digest == "" || alt.Digest == "") && a.Size != alt.Size:
		return Asset{}, fmt.Errorf("asset %s has another size there", a.Name)
	}
	// Keep the stricter check: the digest first published, if any.
	if alt.Digest == "" {
		alt.Digest = a.Digest
	}
	return alt, nil
}

func sameDigest(a, b string) bool {
	return strings.EqualFold(a, b)
}

// Fetch hands the fetch to the provider the asset came from.
func (r *Router) Fetch(ctx context.Context, a Asset) ([]byte, error) {
	p, err := r.assetProvider(a)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", a.Name, err)
	}
	return p.Fetch(ctx, a)
}

func (r *Router) assetProvider(a Asset) (Provider, error) {
	if a.Origin == "" || a.Origin == string(sourceref.KindLocal) {
		if a.Origin == "" {
			if p := r.GitHub["github.com"]; p != nil {
				return p, nil
			}
		}
		if p := r.Kinds[sourceref.KindLocal]; p != nil {
			return p, nil
		}
		return nil, errors.New("asset has no origin")
	}
	return r.provider(a.Origin)
}

func (r *Router) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
