package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/google/go-github/v93/github"
)

// Errors callers branch on.
var (
	// ErrTooLarge: the asset is (or turned out while streaming to be) larger
	// than Options.MaxSize.
	ErrTooLarge = errors.New("asset larger than the download size cap")
	// ErrNotCached: Cached has no stored release for the extension.
	ErrNotCached = errors.New("no cached release data")
	// ErrNoAsset: the latest release lacks an asset this host needs (for
	// example no build for this codename or architecture).
	ErrNoAsset = errors.New("release asset missing")
	// ErrStalled: no byte arrived for Options.StallTimeout. IsNetwork is true.
	ErrStalled = errors.New("connection stalled")
	// ErrInsecure: a plain http:// URL to a non-loopback host, or a redirect
	// from https to http.
	ErrInsecure = errors.New("refusing insecure URL")
)

// RateLimitError reports that GitHub refused the request for rate limiting
// (403 or 429 with X-RateLimit-Remaining: 0, or a secondary limit). Retry
// after Reset, not before.
type RateLimitError struct {
	Reset time.Time
	Err   error
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("github rate limit exceeded until %s", e.Reset.Format(time.RFC3339))
}

func (e *RateLimitError) Unwrap() error { return e.Err }

// NetworkError wraps a failure to reach the server or to get an answer from
// it: connection refused, timeouts, stalls, truncated bodies, 5xx answers.
type NetworkError struct {
	Err error
}

func (e *NetworkError) Error() string { return e.Err.Error() }
func (e *NetworkError) Unwrap() error { return e.Err }

// StatusError is an unexpected HTTP status from a download host.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// DigestMismatchError: the downloaded bytes do not hash to the published
// digest. Want and Got are "sha256:<hex>".
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

// IsNetwork reports whether err is a network failure (timeouts, refused or
// reset connections, stalls, truncated bodies, 5xx answers) or a rate limit:
// the failures the CLI maps to exit code 4 and the daemon retries later. A
// context cancelled by the caller is not one.
func IsNetwork(err error) bool {
	if err == nil {
		return false
	}
	var rl *RateLimitError
	var ne *NetworkError
	if errors.As(err, &rl) || errors.As(err, &ne) {
		return true
	}
	return classify(err) != err
}

// IsRateLimit reports whether err is a *RateLimitError and returns it.
func IsRateLimit(err error) (*RateLimitError, bool) {
	var rl *RateLimitError
	ok := errors.As(err, &rl)
	return rl, ok
}

// classify wraps err into *RateLimitError or *NetworkError when it is one of
// those, and returns it unchanged otherwise.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *RateLimitError
	var ne *NetworkError
	if errors.As(err, &rl) || errors.As(err, &ne) {
		return err
	}
	if errors.Is(err, ErrInsecure) {
		return err
	}
	var ghrl *github.RateLimitError
	if errors.As(err, &ghrl) {
		return &RateLimitError{Reset: ghrl.Rate.Reset.Time, Err: err}
	}
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &abuse) {
		wait := time.Minute
		if abuse.RetryAfter != nil {
			wait = *abuse.RetryAfter
		}
		return &RateLimitError{Reset: time.Now().Add(wait), Err: err}
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode >= 500 {
		return &NetworkError{Err: err}
	}
	var se *StatusError
	if errors.As(err, &se) && se.Status >= 500 {
		return &NetworkError{Err: err}
	}
	if errors.Is(err, ErrStalled) || errors.Is(err, io.ErrUnexpectedEOF) ||
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
