package source

import (
	"errors"
	"net/url"
	"strings"
)

// Redact is u as messages, logs and records may show it: scheme, host and
// path only. url.URL.Redacted keeps the query, and a signed download URL
// (a CDN's ...&sig=..., X-Amz-Signature=...) or a token in a query is a
// credential; user info is a password.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// RedactString is Redact for a URL in a string; what does not parse is
// cut at its first '?' or '#', and its user info dropped.
func RedactString(s string) string {
	if u, err := url.Parse(s); err == nil {
		return Redact(u)
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 && !strings.Contains(rest[:at], "/") {
			rest = rest[at+1:]
		}
		s = scheme + "://" + rest
	}
	return s
}

// scrubURLs redacts the URL of every *url.Error in err's chain: net/http
// reports a failed request as `Get "URL": ...` with the whole URL.
func scrubURLs(err error) error {
	for e := err; e != nil; {
		var ue *url.Error
		if !errors.As(e, &ue) {
			break
		}
		ue.URL = RedactString(ue.URL)
		e = ue.Err
	}
	return err
}
