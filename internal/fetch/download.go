package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Downloaded is a verified file in the caller's directory. The caller
// renames it into place or removes it.
type Downloaded struct {
	Path   string
	SHA256 string // "sha256:<hex>" of the bytes, computed while streaming
	Size   int64
}

// copyBufSize keeps memory flat however large the asset.
const copyBufSize = 256 << 10

// Download streams asset a into a new temporary file in dir (a directory
// systemd never scans), hashing while it streams, enforcing Options.MaxSize
// without trusting Content-Length, and checking the published size and
// digest. An asset without a published digest is accepted; its computed
// digest is in the result. The file is fsynced. On any error nothing is left
// in dir. Errors: ErrTooLarge, *SizeMismatchError, *DigestMismatchError,
// *RateLimitError, network failures (IsNetwork).
func (g *GitHub) Download(ctx context.Context, a Asset, dir string) (*Downloaded, error) {
	if a.Size > g.opts.MaxSize {
		return nil, fmt.Errorf("downloading %s (%d bytes, cap %d): %w", a.Name, a.Size, g.opts.MaxSize, ErrTooLarge)
	}
	body, err := g.open(ctx, a, false)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", a.Name, err)
	}
	defer body.Close()

	f, err := os.CreateTemp(dir, ".sysextd-"+a.Name+"-*.part")
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", a.Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	var w io.Writer = f
	if g.opts.Progress != nil {
		p := newProgress(g.opts.Progress, a.Name, a.Size)
		defer p.done()
		w = io.MultiWriter(f, p)
	}
	d, err := verifiedCopy(w, body, a, g.opts.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", a.Name, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("syncing %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("closing %s: %w", f.Name(), err)
	}
	ok = true
	d.Path = f.Name()
	return d, nil
}

// verifiedCopy copies at most maxSize bytes of body to w and checks them
// against a.
func verifiedCopy(w io.Writer, body io.Reader, a Asset, maxSize int64) (*Downloaded, error) {
	limit := maxSize
	if a.Size > 0 && a.Size < limit {
		limit = a.Size
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(body, limit+1), make([]byte, copyBufSize))
	if err != nil {
		return nil, classify(err)
	}
	switch {
	case n > maxSize:
		return nil, fmt.Errorf("more than %d bytes: %w", maxSize, ErrTooLarge)
	case a.Size > 0 && n != a.Size:
		return nil, &SizeMismatchError{Asset: a.Name, Want: a.Size, Got: n}
	}
	return check(h, n, a)
}

func check(h hash.Hash, n int64, a Asset) (*Downloaded, error) {
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if a.Digest != "" && !strings.EqualFold(a.Digest, got) {
		return nil, &DigestMismatchError{Asset: a.Name, Want: a.Digest, Got: got}
	}
	return &Downloaded{SHA256: got, Size: n}, nil
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
	body, err := g.open(ctx, a, true)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", a.Name, err)
	}
	defer body.Close()
	var buf bytes.Buffer
	if _, err := verifiedCopy(&buf, body, a, maxSmallAsset); err != nil {
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
		return nil, classify(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) &&
		resp.Header.Get("X-RateLimit-Remaining") == "0" {
		reset := time.Now().Add(time.Minute)
		if s, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			reset = time.Unix(s, 0)
		}
		return nil, &RateLimitError{Reset: reset, Err: &StatusError{URL: resp.Request.URL.Redacted(), Status: resp.StatusCode}}
	}
	return nil, classify(&StatusError{URL: resp.Request.URL.Redacted(), Status: resp.StatusCode})
}
