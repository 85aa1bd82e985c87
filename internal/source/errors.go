package source

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Errors callers branch on.
var (
	// ErrTooLarge: the asset is (or turned out while streaming to be) larger
	// than the download cap.
	ErrTooLarge = errors.New("asset larger than the download size cap")
	// ErrNotCached: Cached has no stored release for the extension.
	ErrNotCached = errors.New("no cached release data")
	// ErrNoAsset: no usable release has an asset this host needs (for
	// example no build for this codename or architecture).
	ErrNoAsset = errors.New("release asset missing")
	// ErrStalled: no byte arrived for the stall timeout. IsNetwork is true.
	ErrStalled = errors.New("connection stalled")
	// ErrTooSlow: a download fell below the minimum throughput or passed
	// its deadline. IsNetwork is true.
	ErrTooSlow = errors.New("download too slow")
	// ErrInsecure: a plain http:// URL to a non-loopback host, or a redirect
	// from https to http.
	ErrInsecure = errors.New("refusing insecure URL")
	// ErrUnverified: the asset has no published digest and the
	// configuration requires one (require_digest).
	ErrUnverified = errors.New("no digest published for the asset (require_digest is set)")
	// ErrNotFound: the source has no such extension or release.
	ErrNotFound = errors.New("not found")
	// ErrAllSkipped: every usable release is one the request refuses
	// (Request.Skip). errors.Is(err, ErrNoAsset) holds for it too: there
	// is no release to take, as when none was usable.
	ErrAllSkipped error = allSkipped{}
)

type allSkipped struct{}

func (allSkipped) Error() string        { return "every usable release is skipped (phased away or withdrawn)" }
func (allSkipped) Is(target error) bool { return target == ErrNoAsset }

// skippedError is ErrAllSkipped for req at where, naming the tags skipped
// (at most three).
func skippedError(req Request, where string, tags []string) error {
	if len(tags) > 3 {
		tags = append(tags[:3:3], fmt.Sprintf("and %d more", len(tags)-3))
	}
	return fmt.Errorf("extension %s: no release of %s is left to take, %s skipped: %w", req.Name, where, strings.Join(tags, ", "), ErrAllSkipped)
}

// RateLimitError reports that the server refused the request for rate
// limiting (GitHub: 403 or 429 with X-RateLimit-Remaining: 0, a secondary
// limit with Retry-After, or any 429). Retry after Reset, not before.
type RateLimitError struct {
	Reset time.Time
	Err   error
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limit exceeded until %s", e.Reset.Format(time.RFC3339))
}

func (e *RateLimitError) Unwrap() error { return e.Err }

// NetworkError wraps a failure to reach the server or to get an answer from
// it: connection refused, timeouts, stalls, truncated bodies, 5xx answers.
type NetworkError struct {
	Err error
}

func (e *NetworkError) Error() string { return e.Err.Error() }
func (e *NetworkError) Unwrap() error { return e.Err }

// StatusError is an unexpected HTTP status from a download host (or an
// upload target). Hint, when set, says what the status probably means.
type StatusError struct {
	Method string // "" is GET
	URL    string
	Status int
	Body   string // the first line of the answer's body, when kept
	Hint   string
}

func (e *StatusError) Error() string {
	m := e.Method
	if m == "" {
		m = http.MethodGet
	}
	s := fmt.Sprintf("%s %s: %d %s", m, e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		s += ": " + e.Body
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// DigestMismatchError: the downloaded bytes do not hash to the published
// digest. Want and Got are "ALGO:<hex>".
type DigestMismatchError struct {
	Asset     string
	Want, Got string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("asset %s: digest mismatch: published %s, downloaded %s", e.Asset, e.Want, e.Got)
}

// SizeMismatchError: the download ended at a size other than the published one.
type SizeMismatchError struct {
	Asset     string
	Want, Got int64
}

func (e *SizeMismatchError) Error() string {
	return fmt.Sprintf("asset %s: size mismatch: published %d bytes, downloaded %d", e.Asset, e.Want, e.Got)
}

// CAError: the system has no CA certificates to verify the server with.
type CAError struct{ Err error }

func (e *CAError) Error() string {
	return "no CA certificates to verify the server (install ca-certificates): " + e.Err.Error()
}
func (e *CAError) Unwrap() error { return e.Err }

// IsNetwork reports whether err is a network failure (timeouts, refused or
// reset connections, stalls, truncated bodies, 5xx answers) or a rate limit:
// the failures the CLI maps to exit code 4, the daemon retries later and
// the Router falls through to a mirror on. A context cancelled by the
// caller is not one.
func IsNetwork(err error) bool {
	if err == nil {
		return false
	}
	var rl *RateLimitError
	var ne *NetworkError
	if errors.As(err, &rl) || errors.As(err, &ne) {
		return true
	}
	return Classify(err) != err
}

// IsRateLimit reports whether err is a *RateLimitError and returns it.
func IsRateLimit(err error) (*RateLimitError, bool) {
	var rl *RateLimitError
	ok := errors.As(err, &rl)
	return rl, ok
}

// Classify wraps err into *RateLimitError, *NetworkError or *CAError when it
// is one of those, and returns it unchanged otherwise.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	err = scrubURLs(err)
	var rl *RateLimitError
	var ne *NetworkError
	var ca *CAError
	var te *TLSError
	if errors.As(err, &rl) || errors.As(err, &ne) || errors.As(err, &ca) || errors.As(err, &te) {
		return err
	}
	if gh := classifyGitHub(err); gh != nil {
		return gh
	}
	if errors.Is(err, ErrInsecure) {
		return err
	}
	var se *StatusError
	if errors.As(err, &se) && (se.Status >= 500 || se.Status == http.StatusRequestTimeout) {
		return &NetworkError{Err: err}
	}
	var unknownAuth x509.UnknownAuthorityError
	var sysRoots x509.SystemRootsError
	if errors.As(err, &sysRoots) {
		return &CAError{Err: err}
	}
	if errors.As(err, &unknownAuth) && noSystemRoots() {
		return &CAError{Err: err}
	}
	if errors.Is(err, ErrStalled) || errors.Is(err, ErrTooSlow) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return &NetworkError{Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &netErr) || errors.As(err, &opErr) || errors.As(err, &dnsErr) {
		return &NetworkError{Err: err}
	}
	if errors.Is(err, io.EOF) {
		return &NetworkError{Err: err}
	}
	return err
}

// noSystemRoots reports whether the system CA pool is empty or missing.
func noSystemRoots() bool {
	pool, err := x509.SystemCertPool()
	return err != nil || pool == nil || pool.Equal(x509.NewCertPool())
}

// RateLimitFromResponse returns a *RateLimitError when resp is a rate
// limit: any 429, or a 403 with X-RateLimit-Remaining: 0 or Retry-After.
// The reset time is Retry-After (seconds or an HTTP date), else
// X-RateLimit-Reset, else one minute. now is the current time.
func RateLimitFromResponse(resp *http.Response, now time.Time) *RateLimitError {
	if resp == nil {
		return nil
	}
	h := resp.Header
	limited := resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode == http.StatusForbidden && (h.Get("X-RateLimit-Remaining") == "0" || h.Get("Retry-After") != ""))
	if !limited {
		return nil
	}
	reset := now.Add(time.Minute)
	if ra := h.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			reset = now.Add(time.Duration(s) * time.Second)
		} else if t, err := http.ParseTime(ra); err == nil {
			reset = t
		}
	} else if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		reset = time.Unix(s, 0)
	}
	u := ""
	if resp.Request != nil {
		u = Redact(resp.Request.URL)
	}
	return &RateLimitError{Reset: reset, Err: &StatusError{URL: u, Status: resp.StatusCode}}
}
