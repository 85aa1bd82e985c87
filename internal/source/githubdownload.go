package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Download streams asset a into a new temporary file in dir (a directory
// systemd never scans), hashing while it streams, enforcing GitHubOptions.MaxSize
// without trusting Content-Length, and checking the published size and
// digest (sha256 or sha512). An asset without a published digest is
// accepted, marked Unverified, unless GitHubOptions.RequireDigest (ErrUnverified);
// its computed digest is in the result. The whole download is bounded by
// GitHubOptions.Deadline and GitHubOptions.MinRate. The file is fsynced. On any error
// nothing is left in dir. Errors: ErrTooLarge, *SizeMismatchError,
// *DigestMismatchError, ErrUnverified, *RateLimitError, network failures
// (IsNetwork, ErrTooSlow and ErrStalled included).
func (g *GitHub) Download(ctx context.Context, a Asset, dir string) (*Downloaded, error) {
	if a.Digest == "" && !g.opts.RequireDigest {
		g.log.Warn("downloading "+a.Name+": unverified: no digest published, checking the size only", "asset", a.Name)
	}
	opts := HTTPOptions{MinRate: g.opts.MinRate, RateWindow: g.opts.RateWindow, Deadline: g.opts.Deadline,
		MaxSize: g.opts.MaxSize, RequireDigest: g.opts.RequireDigest}
	opts.Tee = ProgressTee(g.opts.Progress, g.opts.OnProgress)
	return DownloadTo(ctx, &opts, a, dir, func(ctx context.Context) (io.ReadCloser, error) {
		return g.open(ctx, a, false)
	})
}

// Fetch returns the verified bytes of a small asset (SHA256SUMS, a
// signature, a .manifest; at most MaxSmallAsset bytes), from the
// cache when it was fetched before.
func (g *GitHub) Fetch(ctx context.Context, a Asset) ([]byte, error) {
	return g.small(ctx, a, false)
}

// small returns the verified bytes of a small asset (.manifest,
// release.json), from the cache when possible. Offline, a cache miss is
// ErrNotCached.
func (g *GitHub) small(ctx context.Context, a Asset, offline bool) ([]byte, error) {
	if b, ok := g.cache.asset(a); ok {
		return b, nil
	}
	if offline {
		return nil, fmt.Errorf("asset %s: %w", a.Name, ErrNotCached)
	}
	if a.Size > maxSmallAsset {
		return nil, fmt.Errorf("asset %s (%d bytes): %w", a.Name, a.Size, ErrTooLarge)
	}
	select {
	case g.dlSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-g.dlSem }()
	// A small asset is bounded like an image: by throughput, and as a
	// whole by two throughput windows.
	limit := 2 * g.opts.RateWindow
	ctx, cancel := context.WithTimeoutCause(ctx, limit, fmt.Errorf("%w: not done within %s", ErrTooSlow, limit))
	defer cancel()
	body, err := g.open(ctx, a, true)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", a.Name, err)
	}
	defer body.Close()
	var buf bytes.Buffer
	if _, err := VerifiedCopy(&buf, Throttle(body, g.opts.MinRate, g.opts.RateWindow), a, maxSmallAsset); err != nil {
		if c := context.Cause(ctx); errors.Is(c, ErrTooSlow) {
			err = &NetworkError{Err: c}
		}
		return nil, fmt.Errorf("fetching %s: %w", a.Name, err)
	}
	g.cache.putAsset(a, buf.Bytes())
	return buf.Bytes(), nil
}

// open starts the download of a. preferBrowser uses browser_download_url
// (no API quota) and falls back to the API URL when that answers 404, as a
// private repository does without a session cookie.
func (g *GitHub) open(ctx context.Context, a Asset, preferBrowser bool) (io.ReadCloser, error) {
	urls := []string{a.URL}
	if preferBrowser && a.BrowserURL != "" {
		urls = []string{a.BrowserURL, a.URL}
	} else if a.URL == "" {
		urls = []string{a.BrowserURL}
	}
	var lastErr error = errEmptyURL
	for _, u := range urls {
		if u == "" {
			continue
		}
		body, err := g.get(ctx, u)
		if err == nil {
			return body, nil
		}
		lastErr = err
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusNotFound {
			break
		}
	}
	return nil, lastErr
}

func (g *GitHub) get(ctx context.Context, u string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/octet-stream")
	req.Header.Set("User-Agent", "sysextd")
	resp, err := g.download.Do(req)
	if err != nil {
		if errors.Is(err, ErrInsecure) {
			return nil, err
		}
		return nil, Classify(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if rl := RateLimitFromResponse(resp, time.Now()); rl != nil {
		return nil, rl
	}
	se := &StatusError{URL: Redact(resp.Request.URL), Status: resp.StatusCode}
	if resp.StatusCode == http.StatusNotFound && g.opts.Token == "" {
		se.Hint = "a private repository needs a token: set GITHUB_TOKEN or token_file"
	}
	return nil, Classify(se)
}
