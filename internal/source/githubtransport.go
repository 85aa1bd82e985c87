package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// buildTransport layers, from the wire up: the base transport with connect
// and header timeouts, the stall watchdog, and the insecure-URL guard (which
// sees every hop of a redirect).
func buildTransport(opts GitHubOptions) http.RoundTripper {
	var base http.RoundTripper
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		base = opts.HTTPClient.Transport
	} else {
		base = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   opts.ConnectTimeout,
			ResponseHeaderTimeout: opts.StallTimeout + time.Second, // backstop; the stall watchdog fires first
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          8 * opts.Parallel,
			MaxIdleConnsPerHost:   4 * opts.Parallel,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	return Guard(&stallTransport{next: base, stall: opts.StallTimeout})
}

func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// tokenTransport adds the token to requests for the API origin only, so a
// redirect to another host (object storage) never carries it.
type tokenTransport struct {
	next   http.RoundTripper
	origin string
	token  string
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.token != "" && origin(req.URL) == t.origin {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.next.RoundTrip(req)
}

// stallTransport aborts a request when no response header, and later no body
// byte, arrived for stall. The error then wraps ErrStalled.
type stallTransport struct {
	next  http.RoundTripper
	stall time.Duration
}

func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.stall, func() { cancel(ErrStalled) })
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		stalled := context.Cause(ctx) == ErrStalled
		cancel(nil)
		if stalled {
			return nil, fmt.Errorf("waiting for %s: %w", Redact(req.URL), ErrStalled)
		}
		return nil, err
	}
	timer.Reset(t.stall)
	resp.Body = &stallBody{rc: resp.Body, ctx: ctx, cancel: cancel, timer: timer, stall: t.stall}
	return resp, nil
}

type stallBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	stall  time.Duration
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	if err != nil && err != io.EOF && context.Cause(b.ctx) == ErrStalled {
		return n, fmt.Errorf("reading response: %w", ErrStalled)
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// notModifiedHeader marks a response that etagTransport served from its
// cache after a 304.
const notModifiedHeader = "Sysextd-Not-Modified"

// etagTransport makes release requests (latest and the list) conditional.
// It remembers the ETag and body of each 200 and turns a later 304 into a
// 200 carrying the remembered body, so go-github sees an ordinary answer.
// GitHub's release ETags are weak and change whenever a download count
// does, so a 304 is a bonus, not a promise; and without a token a 304
// still costs quota: freshness (GitHubOptions.Fresh) is what saves requests.
type etagTransport struct {
	next  http.RoundTripper
	cache *githubCache
}

func isReleasePath(p string) bool {
	return strings.HasSuffix(p, "/releases/latest") || strings.HasSuffix(p, "/releases")
}

func cacheKey(u *url.URL) string {
	k := u.Host + u.Path
	if u.RawQuery != "" {
		k += "?" + u.RawQuery
	}
	return k
}

func (t *etagTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || !isReleasePath(req.URL.Path) {
		return t.next.RoundTrip(req)
	}
	key := cacheKey(req.URL)
	ent, cached := t.cache.release(key)
	if cached && ent.ETag != "" {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", ent.ETag)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && cached:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
		resp.Header.Set(notModifiedHeader, "1")
		resp.Body = io.NopCloser(bytes.NewReader(ent.Body))
		resp.ContentLength = int64(len(ent.Body))
	case resp.StatusCode == http.StatusOK:
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", Redact(req.URL), err)
		}
		t.cache.putRelease(key, releaseEntry{ETag: resp.Header.Get("ETag"), Body: body})
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
	}
	return resp, nil
}

// renameTransport follows a 301/308 of the API for a renamed or moved
// repository itself (so the caller's cache key stays the name in the
// manifest), and remembers the move in the cache, so that later requests
// go to the new place at once: one request, not two, and --offline still
// finds the cached answer under the manifest's name.
type renameTransport struct {
	next  http.RoundTripper
	cache *githubCache
}

func (t *renameTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return t.next.RoundTrip(req)
	}
	orig := req.URL.Path
	if p, ok := t.cache.renamed(orig); ok {
		req = req.Clone(req.Context())
		req.URL.Path, req.URL.RawPath = p, ""
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusPermanentRedirect) {
		return resp, err
	}
	loc, lerr := req.URL.Parse(resp.Header.Get("Location"))
	if lerr != nil || origin(loc) != origin(req.URL) {
		return resp, nil // not ours to follow: the client's redirect policy decides
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	t.cache.putRename(orig, loc.Path)
	next := req.Clone(req.Context())
	next.URL = loc
	next.Host = ""
	return t.next.RoundTrip(next)
}
