package source

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Auth holds the logins of static mirrors that need one, read from files
// in the format of APT's auth.conf (apt_auth.conf(5)), so that an operator
// who has written one for a Debian mirror already knows it:
//
//	# a comment
//	machine mirror.example.com/sysext login fleet password s3cret
//
// A machine is HOST[:PORT][/PATH], optionally prefixed by "https://" (or
// "http://", honoured only for loopback, as every other plain-http use).
// Without a scheme the entry is for https only; without a port it is for
// any port; a path matches itself and everything below it. The first
// matching entry wins, files in the order given. The login is sent as
// HTTP basic auth, only to the matching host: never to a host a redirect
// leads to, and never over plain http to another machine.
type Auth struct {
	entries []authEntry
	skipped []string // files this process may not read (an unprivileged sysextctl)
}

type authEntry struct {
	scheme, host, port, path string
	login, password          string
	file                     string
	line                     int
}

// maxAuthFile bounds an auth file.
const maxAuthFile = 1 << 20

// ParseAuth reads one auth file's contents; name is used in errors, which
// name the line and never carry a password.
func ParseAuth(name string, data []byte) (*Auth, error) {
	if len(data) > maxAuthFile {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, len(data), maxAuthFile)
	}
	type token struct {
		s    string
		line int
	}
	var toks []token
	for i, l := range strings.Split(string(data), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "#") {
			continue
		}
		for _, f := range strings.Fields(l) {
			toks = append(toks, token{f, i + 1})
		}
	}
	a := &Auth{}
	var cur *authEntry
	finish := func() error {
		if cur == nil {
			return nil
		}
		if cur.login == "" || cur.password == "" {
			return fmt.Errorf("%s:%d: machine %s needs both a login and a password", name, cur.line, cur.host+cur.path)
		}
		a.entries = append(a.entries, *cur)
		cur = nil
		return nil
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.s != "machine" && t.s != "login" && t.s != "password" {
			// Not echoed: a stray word is often the second half of a
			// password with a space in it.
			return nil, fmt.Errorf("%s:%d: unexpected word: want machine, login or password (values cannot contain spaces)", name, t.line)
		}
		if i+1 >= len(toks) {
			return nil, fmt.Errorf("%s:%d: %q needs a value", name, t.line, t.s)
		}
		v := toks[i+1]
		i++
		switch t.s {
		case "machine":
			if err := finish(); err != nil {
				return nil, err
			}
			e, err := parseMachine(v.s)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, v.line, err)
			}
			e.file, e.line = name, t.line
			cur = &e
		case "login", "password":
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: %q before any machine", name, t.line, t.s)
			}
			if t.s == "login" {
				cur.login = v.s
			} else {
				cur.password = v.s
			}
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return a, nil
}

func parseMachine(s string) (authEntry, error) {
	var e authEntry
	rest := s
	if sch, r, ok := strings.Cut(s, "://"); ok {
		sch = strings.ToLower(sch)
		if sch != "https" && sch != "http" {
			return e, fmt.Errorf("machine %q: want https:// or no scheme", s)
		}
		e.scheme, rest = sch, r
	}
	hostport, p, _ := strings.Cut(rest, "/")
	u, err := url.Parse("https://" + hostport)
	if err != nil || u.Hostname() == "" || u.Host != hostport || u.User != nil {
		return e, fmt.Errorf("machine %q: want HOST[:PORT][/PATH]", s)
	}
	e.host, e.port = strings.ToLower(u.Hostname()), u.Port()
	if e.scheme == "http" && !sourceref.IsLoopback(e.host) {
		return e, fmt.Errorf("machine %q: a login is never sent over plain http except to loopback", s)
	}
	if p = strings.Trim(p, "/"); p != "" {
		e.path = "/" + p
	}
	return e, nil
}

// LoadAuth reads the auth files in order; a file or directory that does
// not exist is skipped, and dirs contribute their *.conf files sorted by
// name. Files readable by others than their owner are reported in
// warnings (they hold passwords); files the caller may not read (an
// unprivileged sysextctl) are skipped, and named by a refused request's
// hint.
func LoadAuth(files []string, dirs []string) (*Auth, []string, error) {
	a := &Auth{}
	var unreadableDirs []string
	all := append([]string(nil), files...)
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case errors.Is(err, fs.ErrPermission):
			unreadableDirs = append(unreadableDirs, d)
			continue
		case err != nil:
			return nil, nil, err
		}
		for _, e := range ents { // sorted by name
			if strings.HasSuffix(e.Name(), ".conf") {
				all = append(all, filepath.Join(d, e.Name()))
			}
		}
	}
	var warn []string
	for _, f := range all {
		fi, err := os.Stat(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, nil, fmt.Errorf("%s: not a regular file", f)
		}
		b, err := readFileCapped(f, maxAuthFile)
		if errors.Is(err, fs.ErrPermission) {
			a.skipped = append(a.skipped, f)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			warn = append(warn, fmt.Sprintf("%s holds passwords and is readable by others (mode %#o): chmod 600 it", f, fi.Mode().Perm()))
		}
		p, err := ParseAuth(f, b)
		if err != nil {
			return nil, nil, err
		}
		a.entries = append(a.entries, p.entries...)
	}
	a.skipped = append(a.skipped, unreadableDirs...)
	return a, warn, nil
}

// Len is the number of entries.
func (a *Auth) Len() int {
	if a == nil {
		return 0
	}
	return len(a.entries)
}

// lookup returns the first entry for u, or nil.
func (a *Auth) lookup(u *url.URL) *authEntry {
	if a == nil {
		return nil
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	for i := range a.entries {
		e := &a.entries[i]
		switch {
		case e.scheme == "" && scheme != "https":
			continue
		case e.scheme != "" && e.scheme != scheme:
			continue
		case scheme == "http" && !sourceref.IsLoopback(host):
			continue
		case e.host != host, e.port != "" && e.port != portOf(u):
			continue
		}
		if p := u.Path; e.path != "" && p != e.path && !strings.HasPrefix(p, e.path+"/") {
			continue
		}
		return e
	}
	return nil
}

// portOf is u's port, the scheme's default when it names none.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "http") {
		return "80"
	}
	return "443"
}

// hint says what to do about a 401 or 403 from a mirror: which file to
// add a login to, or which entry's login was refused.
func (a *Auth) hint(req *http.Request) string {
	if e := a.lookup(req.URL); e != nil {
		return fmt.Sprintf("the login for %s in %s:%d was refused", req.URL.Host, e.file, e.line)
	}
	if a != nil && len(a.skipped) > 0 {
		return fmt.Sprintf("%s could not be read by this user; run as root if the mirror needs a login", strings.Join(a.skipped, ", "))
	}
	machine := req.URL.Host
	if req.URL.Scheme == "http" {
		machine = "http://" + machine // entries without a scheme are for https only
	}
	return fmt.Sprintf("if the mirror needs a login, add \"machine %s login USER password PASS\" to /etc/sysextd/auth.conf", machine)
}

// Transport adds the matching login to each request next is given (a
// redirect is a new request, matched on its own URL).
func (a *Auth) Transport(next http.RoundTripper) http.RoundTripper {
	if a.Len() == 0 {
		return next
	}
	return authTransport{a, next}
}

type authTransport struct {
	a    *Auth
	next http.RoundTripper
}

func (t authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	e := t.a.lookup(req.URL)
	if e == nil || req.Header.Get("Authorization") != "" {
		return t.next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.SetBasicAuth(e.login, e.password)
	return t.next.RoundTrip(r)
}
