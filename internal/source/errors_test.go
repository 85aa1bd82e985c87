package source

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	ca := Classify(fmt.Errorf("tls: %w", x509.SystemRootsError{}))
	var caErr *CAError
	if !errors.As(ca, &caErr) || IsNetwork(ca) {
		t.Errorf("missing CA store: %v, want a *CAError that is not a network failure", ca)
	}
	if err := Classify(&StatusError{Status: 503}); !IsNetwork(err) {
		t.Errorf("503: %v, want a network failure", err)
	}
	if err := Classify(&StatusError{Status: 404}); IsNetwork(err) {
		t.Errorf("404: %v, not a network failure", err)
	}
}

func TestRateLimitFromResponse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(status int, h map[string]string) *http.Response {
		r := &http.Response{StatusCode: status, Header: http.Header{}, Request: &http.Request{URL: mustURL("https://x/y")}}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	tests := []struct {
		name  string
		resp  *http.Response
		reset time.Duration // from now; -1: not a rate limit
	}{
		{"bare 429", mk(429, nil), time.Minute},
		{"429 Retry-After", mk(429, map[string]string{"Retry-After": "30"}), 30 * time.Second},
		{"secondary 403", mk(403, map[string]string{"Retry-After": "120"}), 2 * time.Minute},
		{"primary 403", mk(403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": fmt.Sprint(now.Add(time.Hour).Unix())}), time.Hour},
		{"Retry-After date", mk(429, map[string]string{"Retry-After": now.Add(5 * time.Minute).Format(http.TimeFormat)}), 5 * time.Minute},
		{"plain 403", mk(403, nil), -1},
		{"404", mk(404, nil), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rl := RateLimitFromResponse(tt.resp, now)
			if tt.reset < 0 {
				if rl != nil {
					t.Fatalf("got a rate limit until %s, want none", rl.Reset)
				}
				return
			}
			if rl == nil || !rl.Reset.Equal(now.Add(tt.reset)) {
				t.Fatalf("got %v, want a rate limit until %s", rl, now.Add(tt.reset))
			}
			if !IsNetwork(rl) {
				t.Error("a rate limit must count as a network failure (exit 4)")
			}
		})
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
