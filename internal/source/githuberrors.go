package source

import (
	"errors"
	"time"

	"github.com/google/go-github/v93/github"
)

// classifyGitHub wraps go-github's own error types into *RateLimitError or
// *NetworkError: a primary or secondary rate limit, a 403/429 that is one
// by its headers, or a 5xx answer. It returns nil for any other error, and
// Classify goes on with it.
func classifyGitHub(err error) error {
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
		if rl := RateLimitFromResponse(er.Response, time.Now()); rl != nil {
			rl.Err = err
			return rl
		}
		if er.Response.StatusCode >= 500 {
			return &NetworkError{Err: err}
		}
	}
	return nil
}
