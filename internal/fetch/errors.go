package fetch

import (
	"errors"
	"time"

	"github.com/google/go-github/v93/github"
	"github.com/spamtagger/sysextd/internal/source"
)

// Errors and error types callers branch on, shared by every source.
var (
	ErrTooLarge   = source.ErrTooLarge
	ErrNotCached  = source.ErrNotCached
	ErrNoAsset    = source.ErrNoAsset
	ErrStalled    = source.ErrStalled
	ErrInsecure   = source.ErrInsecure
	ErrUnverified = source.ErrUnverified
	ErrTooSlow    = source.ErrTooSlow
)

type (
	RateLimitError      = source.RateLimitError
	NetworkError        = source.NetworkError
	StatusError         = source.StatusError
	DigestMismatchError = source.DigestMismatchError
	SizeMismatchError   = source.SizeMismatchError
)

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
// those (go-github's errors included), and returns it unchanged otherwise.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *RateLimitError
	var ne *NetworkError
	if errors.As(err, &rl) || errors.As(err, &ne) {
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
	if errors.As(err, &er) && er.Response != nil {
		if rl := source.RateLimitFromResponse(er.Response, time.Now()); rl != nil {
			rl.Err = err
			return rl
		}
		if er.Response.StatusCode >= 500 {
			return &NetworkError{Err: err}
		}
	}
	return source.Classify(err)
}
