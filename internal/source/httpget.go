package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/sourceref"
)

// HTTPOptions bound the HTTP requests of the mirror and OCI sources.
type HTTPOptions struct {
	Transport      http.RoundTripper // default: a transport with the timeouts below
	ConnectTimeout time.Duration     // default 10 s
	HeaderTimeout  time.Duration     // default 20 s
	MinRate        int64             // bytes/s averaged over RateWindow; default 16 KiB/s
	RateWindow     time.Duration     // default 15 s
	Deadline       time.Duration     // a whole download; default 30 min
	MaxSize        int64             // download cap; default 2 GiB
	RequireDigest  bool              // refuse assets without a digest
	Auth           *Auth             // logins for static mirrors (auth.conf); nil for none
	// Tee, when set, also receives the bytes of each download (a progress
	// bar); done is called when the download ends.
	Tee func(a Asset) (w io.Writer, done func())
}

func (o *HTTPOptions) defaults() {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 20 * time.Second
	}
	if o.MinRate <= 0 {
		o.MinRate = 16 << 10
	}
	if o.RateWindow <= 0 {
		o.RateWindow = 15 * time.Second
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Minute
	}
	if o.MaxSize <= 0 {
		o.MaxSize = 2 << 30
	}
	if o.Transport == nil {
		o.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   o.ConnectTimeout,
			ResponseHeaderTimeout: o.HeaderTimeout,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
		}
	}
}

// client is an http.Client that refuses plain http except to loopback,
// and https-to-http redirects.
func (o *HTTPOptions) client() *http.Client {
	return &http.Client{Transport: Guard(o.Auth.Transport(o.Transport)), CheckRedirect: CheckRedirect}
}

// CheckURL refuses anything but https, except http to loopback.
func CheckURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if sourceref.IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w: plain http to %s", ErrInsecure, u.Host)
	default:
		return fmt.Errorf("%w: scheme %q in %s", ErrInsecure, u.Scheme, Redact(u))
	}
}

// CheckRedirect (an http.Client's) refuses a downgrade from https to http
// and long chains.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: redirect from https to %s", ErrInsecure, Redact(req.URL))
	}
	return nil
}

// Guard applies CheckURL to every request next is given, redirects
// included.
func Guard(next http.RoundTripper) http.RoundTripper { return guard{next} }

type guard struct{ next http.RoundTripper }

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := CheckURL(req.URL); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// open returns the body of u: a file for file://, else an HTTP GET
// answered 200. Statuses map to *RateLimitError, *NetworkError (5xx) or
// *StatusError (404 wraps ErrNotFound too; 401 and 403 carry auth's hint).
func open(ctx context.Context, c *http.Client, auth *Auth, u string) (io.ReadCloser, int64, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, 0, fmt.Errorf("parsing %q: %w", u, err)
	}
	if p.Scheme == "file" {
		f, err := os.Open(filepath.Clean(p.Path))
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		if err != nil {
			return nil, 0, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, fi.Size(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("User-Agent", "sysextd")
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, Classify(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, resp.ContentLength, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if rl := RateLimitFromResponse(resp, time.Now()); rl != nil {
		return nil, 0, rl
	}
	se := &StatusError{URL: Redact(resp.Request.URL), Status: resp.StatusCode}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		se.Hint = auth.hint(resp.Request)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, 0, fmt.Errorf("%w: %w", ErrNotFound, se)
	}
	return nil, 0, Classify(se)
}

// readCapped reads at most limit bytes of u.
func readCapped(ctx context.Context, c *http.Client, auth *Auth, u string, limit int64) ([]byte, error) {
	body, _, err := open(ctx, c, auth, u)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, Classify(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes: %w", u, limit, ErrTooLarge)
	}
	return b, nil
}

// DownloadTo streams a (opened with op) into a new file in dir, verified
// and fsynced, under opts' size, deadline and throughput bounds; every
// source's download, GitHub's included, goes through it. On any error
// nothing is left in dir.
func DownloadTo(ctx context.Context, opts *HTTPOptions, a Asset, dir string, op func(ctx context.Context) (io.ReadCloser, error)) (*Downloaded, error) {
	if a.Size > opts.MaxSize {
		return nil, fmt.Errorf("downloading %s (%d bytes, cap %d): %w", a.Name, a.Size, opts.MaxSize, ErrTooLarge)
	}
	if a.Digest == "" && opts.RequireDigest {
		return nil, fmt.Errorf("downloading %s: %w", a.Name, ErrUnverified)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opts.Deadline, fmt.Errorf("%w: not done within %s", ErrTooSlow, opts.Deadline))
	defer cancel()
	body, err := op(ctx)
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
	if opts.Tee != nil {
		tee, done := opts.Tee(a)
		defer done()
		w = io.MultiWriter(f, tee)
	}
	d, err := VerifiedCopy(w, Throttle(body, opts.MinRate, opts.RateWindow), a, opts.MaxSize)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, ErrTooSlow) {
			err = &NetworkError{Err: c}
		}
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

// smallCache keeps small verified assets by content digest on disk.
type smallCache struct{ dir string }

func (c smallCache) path(a Asset) string {
	if c.dir == "" || a.Digest == "" {
		return ""
	}
	return filepath.Join(c.dir, DigestKey(a))
}

func (c smallCache) get(a Asset) ([]byte, bool) {
	p := c.path(a)
	if p == "" {
		return nil, false
	}
	b, err := os.ReadFile(p)
	return b, err == nil
}

func (c smallCache) put(a Asset, b []byte) {
	if p := c.path(a); p != "" {
		_ = writeFileAtomic(p, b)
	}
}

// keyOf is a file name for a cache key.
func keyOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// writeFileAtomic writes b to path through a temporary file and a rename;
// the file is readable by everyone (list runs unprivileged).
func writeFileAtomic(path string, b []byte) error {
	// Every write resolves inside the cache directory, which the wiring
	// checked stays inside the root (rootfs.Root.Contain).
	return rootfs.WriteUnder(filepath.Dir(path), filepath.Base(path), b, 0o644)
}

func readFileCapped(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes: %w", p, limit, ErrTooLarge)
	}
	return b, nil
}
