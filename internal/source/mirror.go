package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Mirror is a static mirror over https:// (http:// to loopback) or
// file://: BASE/IMAGE/index.json lists the releases of IMAGE with every
// asset's size and SHA-256, and the assets are at BASE/IMAGE/TAG/NAME
// (docs/sources.md). One lookup is one small GET (or file read) per
// extension, plus the .manifest when not cached.
type Mirror struct {
	opts     HTTPOptions
	client   *http.Client
	cacheDir string
	small    smallCache
}

// NewMirror returns the mirror provider. cacheDir ("" for none) keeps the
// last index of each https mirror for Cached, and small assets by digest.
func NewMirror(opts HTTPOptions, cacheDir string) *Mirror {
	opts.defaults()
	m := &Mirror{opts: opts, client: opts.client(), cacheDir: cacheDir}
	if cacheDir != "" {
		m.small = smallCache{dir: filepath.Join(cacheDir, "mirror-assets")}
	}
	return m
}

// LatestAll looks each request up in its mirror, 8 at a time.
func (m *Mirror) LatestAll(ctx context.Context, reqs []Request, t Target) map[string]Result {
	return lookupAll(reqs, 8, func(q Request) (*Release, error) { return m.latest(ctx, q, t, false) })
}

// lookupAll runs lookup for every request, at most n at once, and collects
// the answers by request name.
func lookupAll(reqs []Request, n int, lookup func(Request) (*Release, error)) map[string]Result {
	out := make(map[string]Result, len(reqs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, n)
	for _, q := range reqs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rel, err := lookup(q)
			mu.Lock()
			out[q.Name] = Result{Release: rel, Err: err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// Cached answers from the last index read: for file:// the directory
// itself (no network is involved), for https:// the cached copy.
func (m *Mirror) Cached(req Request, t Target) (*Release, error) {
	return m.latest(context.Background(), req, t, true)
}

func (m *Mirror) latest(ctx context.Context, req Request, t Target, offline bool) (*Release, error) {
	ref, err := sourceref.Parse(req.URL)
	if err != nil || ref.Kind != sourceref.KindMirror {
		return nil, fmt.Errorf("extension %s: %q is not a mirror URL", req.Name, req.URL)
	}
	image := req.ImageName()
	ixURL := ref.URL + "/" + image + "/index.json"
	local := strings.HasPrefix(ref.URL, "file://")
	cacheFile := ""
	if m.cacheDir != "" && !local {
		cacheFile = filepath.Join(m.cacheDir, "mirrors", keyOf(ixURL)+".json")
	}
	var data []byte
	switch {
	case offline && !local:
		if cacheFile == "" {
			return nil, fmt.Errorf("extension %s: %w", req.Name, ErrNotCached)
		}
		if data, err = readFileCapped(cacheFile, maxIndex); err != nil {
			return nil, fmt.Errorf("extension %s: %w", req.Name, ErrNotCached)
		}
	default:
		if data, err = readCapped(ctx, m.client, m.opts.Auth, ixURL, maxIndex); err != nil {
			return nil, fmt.Errorf("extension %s: reading mirror index %s: %w", req.Name, ixURL, err)
		}
	}
	ix, err := ParseIndex(data, image)
	if err != nil {
		return nil, fmt.Errorf("extension %s: mirror index %s: %w", req.Name, ixURL, err)
	}
	if cacheFile != "" && !offline {
		_ = writeFileAtomic(cacheFile, data)
	}
	c, err := Pick(ix.Candidates(ref.URL), req, t, ref.URL)
	if err != nil {
		return nil, err
	}
	base := Release{Repo: ref.URL, Origin: ref.URL, Kind: sourceref.KindMirror}
	return Resolve(ctx, req, t, c, base, func(ctx context.Context, a Asset) ([]byte, error) {
		if offline && !local {
			if b, ok := m.small.get(a); ok {
				return b, nil
			}
			return nil, fmt.Errorf("asset %s: %w", a.Name, ErrNotCached)
		}
		return m.Fetch(ctx, a)
	})
}

// Download copies the asset into dir, verified against the index.
func (m *Mirror) Download(ctx context.Context, a Asset, dir string) (*Downloaded, error) {
	return DownloadTo(ctx, &m.opts, a, dir, func(ctx context.Context) (io.ReadCloser, error) {
		body, _, err := open(ctx, m.client, m.opts.Auth, a.URL)
		return body, err
	})
}

// Fetch returns a small asset's verified bytes, cached by digest.
func (m *Mirror) Fetch(ctx context.Context, a Asset) ([]byte, error) {
	if b, ok := m.small.get(a); ok {
		return b, nil
	}
	if a.Size > MaxSmallAsset {
		return nil, fmt.Errorf("asset %s (%d bytes): %w", a.Name, a.Size, ErrTooLarge)
	}
	limit := 2 * m.opts.RateWindow
	ctx, cancel := context.WithTimeoutCause(ctx, limit, fmt.Errorf("%w: not done within %s", ErrTooSlow, limit))
	defer cancel()
	body, _, err := open(ctx, m.client, m.opts.Auth, a.URL)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", a.Name, err)
	}
	defer body.Close()
	var buf bytes.Buffer
	if _, err := VerifiedCopy(&buf, Throttle(body, m.opts.MinRate, m.opts.RateWindow), a, MaxSmallAsset); err != nil {
		return nil, fmt.Errorf("fetching %s: %w", a.Name, err)
	}
	m.small.put(a, buf.Bytes())
	return buf.Bytes(), nil
}
