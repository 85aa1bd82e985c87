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

// IsNetwork is source.IsNetwork once go-github's own error types are
// classified: the failures the CLI maps to exit code 4 and the daemon
// retries later.
func IsNetwork(err error) bool { return source.IsNetwork(classify(err)) }

// IsRateLimit reports whether err is a *RateLimitError and returns it.
func IsRateLimit(err error) (*RateLimitError, bool) { return source.IsRateLimit(err) }

// classify wraps err into *RateLimitError or *NetworkError when it is one of
// those (go-github's errors included), and returns it unchanged otherwise.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := source.IsRateLimit(err); ok {
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
