package source

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// Signed URLs (a CDN's ...&sig=...) and user info never reach a message:
// net/http's own errors carry the whole URL, and url.URL.Redacted keeps
// the query.
func TestRedact(t *testing.T) {
	for _, in := range []string{
		"https://objects.example/x/y.squashfs?sig=SECRET&se=2026",
		"https://user:SECRET@mirror.example/p?token=SECRET#frag",
		"http://127.0.0.1:8080/a?X-Amz-Signature=SECRET",
		"::not a url?sig=SECRET",
	} {
		got := RedactString(in)
		if strings.Contains(got, "SECRET") || strings.Contains(got, "?") {
			t.Errorf("RedactString(%q) = %q", in, got)
		}
	}
	u, _ := url.Parse("https://u:p@h.example/a/b?sig=SECRET")
	if got := Redact(u); got != "https://h.example/a/b" {
		t.Errorf("Redact = %q", got)
	}
	err := Classify(&url.Error{Op: "Get", URL: "https://cdn.example/a?sig=SECRET", Err: errors.New("connection reset")})
	if strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "https://cdn.example/a") {
		t.Errorf("Classify kept the query: %v", err)
	}
}
