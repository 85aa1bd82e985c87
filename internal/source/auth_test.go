package source

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unicode"
)

func TestParseAuth(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     []authEntry // file and line are checked separately
		err      string
	}{
		{"one line", "machine mirror.example.com/sysext login fleet password s3cret\n",
			[]authEntry{{host: "mirror.example.com", path: "/sysext", login: "fleet", password: "s3cret"}}, ""},
		{"netrc style over lines, comments", "# fleet\nmachine Mirror.Example.com:8443\n  login fleet\n  password s3cret\n\nmachine https://b.example/x/ login u password p\n",
			[]authEntry{{host: "mirror.example.com", port: "8443", login: "fleet", password: "s3cret"},
				{scheme: "https", host: "b.example", path: "/x", login: "u", password: "p"}}, ""},
		{"http to loopback", "machine http://127.0.0.1:8080 login u password p",
			[]authEntry{{scheme: "http", host: "127.0.0.1", port: "8080", login: "u", password: "p"}}, ""},
		{"empty", "", nil, ""},
		{"http elsewhere", "machine http://mirror.example login u password p", nil, "auth.conf:1: machine \"http://mirror.example\": a login is never sent over plain http"},
		{"other scheme", "machine ftp://m login u password p", nil, "auth.conf:1: machine \"ftp://m\": want https://"},
		{"no password", "machine m login u\nmachine n login u password p", nil, "auth.conf:1: machine m needs both a login and a password"},
		{"login first", "login u password p", nil, "auth.conf:1: \"login\" before any machine"},
		{"dangling", "machine m login u password", nil, "auth.conf:1: \"password\" needs a value"},
		{"port without a host", "machine :443 login u password p", nil, "auth.conf:1: machine \":443\": want HOST"},
		{"bad host", "machine user@m login u password p", nil, "auth.conf:1: machine \"user@m\": want HOST"},
		{"unknown word", "machine m\nport 80 login u password p", nil, "auth.conf:2: unexpected word"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAuth("auth.conf", []byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(a.entries) != len(tt.want) {
				t.Fatalf("entries = %+v, want %+v", a.entries, tt.want)
			}
			for i, e := range a.entries {
				if e.file != "auth.conf" || e.line == 0 {
					t.Errorf("entry %d at %s:%d", i, e.file, e.line)
				}
				e.file, e.line = "", 0
				if e != tt.want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, e, tt.want[i])
				}
			}
		})
	}
}

// A password with a space in it splits into two words; the second half
// must not show up in the error (which ends up in the journal).
func TestParseAuthNeverShowsPassword(t *testing.T) {
	for _, in := range []string{
		"machine m login u password s3cr3t half2ofit\n",
		"machine m login u password s3cr3t half2ofit",
		"machine m password s3cr3t half2ofit login u",
	} {
		_, err := ParseAuth("auth.conf", []byte(in))
		if err == nil || strings.Contains(err.Error(), "half2ofit") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%q: err = %v, want an error without the password", in, err)
		}
	}
}

func TestAuthLookup(t *testing.T) {
	a, err := ParseAuth("auth.conf", []byte(`
machine m.example/sysext/private login first password 1
machine m.example/sysext login second password 2
machine m.example:8443 login port password 3
machine http://127.0.0.1 login loop password 4
machine d.example:443 login default-port password 6
machine https://x.example login https password 5
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ url, login string }{
		{"https://m.example/sysext/private/sysext-a/index.json", "first"},
		{"https://m.example/sysext/privateer/index.json", "second"}, // a path matches whole components
		{"https://M.EXAMPLE/sysext", "second"},
		{"https://m.example/other", ""},
		{"https://m.example:8443/other", "port"},
		{"http://m.example/sysext/x", ""}, // no scheme: https only
		{"http://127.0.0.1:9999/x", "loop"},
		{"https://127.0.0.1/x", ""},
		{"https://x.example/a", "https"},
		{"https://evil.example/sysext", ""},
		{"https://d.example/x", "default-port"},
		{"https://d.example:8443/x", ""},
	} {
		u, _ := url.Parse(tt.url)
		got := ""
		if e := a.lookup(u); e != nil {
			got = e.login
		}
		if got != tt.login {
			t.Errorf("%s: login %q, want %q", tt.url, got, tt.login)
		}
	}
	var none *Auth
	if u, _ := url.Parse("https://m.example/"); none.lookup(u) != nil || none.Len() != 0 {
		t.Error("nil Auth matched")
	}
}

func TestLoadAuth(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "auth.conf")
	d := filepath.Join(dir, "auth.conf.d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	writeMode := func(p, s string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	writeMode(main, "machine a.example login main password 1\n", 0o600)
	writeMode(filepath.Join(d, "20-b.conf"), "machine a.example login b password 2\nmachine b.example login b password 2\n", 0o644)
	writeMode(filepath.Join(d, "10-c.conf"), "machine c.example login c password 3\n", 0o600)
	writeMode(filepath.Join(d, "ignored.txt"), "not an auth file", 0o600)
	a, warns, err := LoadAuth([]string{main, filepath.Join(dir, "missing.conf")}, []string{d, filepath.Join(dir, "missing.d")})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range a.entries {
		order = append(order, e.host+"="+e.login)
	}
	if got := strings.Join(order, " "); got != "a.example=main c.example=c a.example=b b.example=b" {
		t.Errorf("entries in order %s", got)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "20-b.conf holds passwords and is readable by others (mode 0644)") {
		t.Errorf("warnings = %q, want one about 20-b.conf's mode", warns)
	}
	writeMode(filepath.Join(d, "30-bad.conf"), "machine x.example\nlogin u\n", 0o600)
	if _, _, err := LoadAuth(nil, []string{d}); err == nil || !strings.Contains(err.Error(), "30-bad.conf:1: machine x.example needs both") {
		t.Errorf("broken file: %v", err)
	}
}

// basicAuthMirror serves a static mirror only to login:password, and
// records the Authorization header of every request.
type basicAuthMirror struct {
	*httptest.Server
	mu    sync.Mutex
	seen  []string
	login string
}

func newBasicAuthMirror(t *testing.T, base, login, password string) *basicAuthMirror {
	m := &basicAuthMirror{login: login}
	fs := http.FileServer(http.Dir(base))
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.seen = append(m.seen, r.Header.Get("Authorization"))
		m.mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != login || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="mirror"`)
			http.Error(w, "401 Authorization Required", http.StatusUnauthorized)
			return
		}
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(m.Close)
	return m
}

func TestMirrorWithLogin(t *testing.T) {
	base := t.TempDir()
	writeMirror(t, base, helloFiles())
	srv := newBasicAuthMirror(t, base, "fleet", "s3cret")
	checkMirrorLogin(t, srv.URL+"/", "fleet", "s3cret")
}

// checkMirrorLogin reads the mirror at mirrorURL (http to loopback, holding
// sysext-hello 1.0-1) that serves only to login:password: without a login
// it is a 401 whose hint says which line to add; with a wrong password the
// hint names the entry, the error never the password; with the right one
// lookup, download and a small asset work.
func checkMirrorLogin(t *testing.T, mirrorURL, login, password string) {
	t.Helper()
	u, err := url.Parse(mirrorURL)
	if err != nil {
		t.Fatal(err)
	}
	machine := "http://" + u.Host + strings.TrimSuffix(u.Path, "/")
	req := Request{Name: "hello", URL: mirrorURL}

	res := NewMirror(HTTPOptions{}, "").LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	var se *StatusError
	if !errors.As(res.Err, &se) || se.Status != http.StatusUnauthorized || !strings.Contains(se.Hint, `add "machine http://`+u.Host+` login USER password PASS" to /etc/sysextd/auth.conf`) {
		t.Fatalf("without a login: %v, want a 401 with a hint", res.Err)
	}

	wrong, err := ParseAuth("/etc/sysextd/auth.conf", []byte("\nmachine "+machine+" login "+login+" password Wr0ngPw\n"))
	if err != nil {
		t.Fatal(err)
	}
	res = NewMirror(HTTPOptions{Auth: wrong}, "").LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	if res.Err == nil || !strings.Contains(res.Err.Error(), "the login for "+u.Host+" in /etc/sysextd/auth.conf:2 was refused") || strings.Contains(res.Err.Error(), "Wr0ngPw") {
		t.Fatalf("wrong password: %v", res.Err)
	}

	good, err := ParseAuth("auth.conf", []byte("machine "+machine+" login "+login+" password "+password+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMirror(HTTPOptions{Auth: good}, "")
	res = m.LatestAll(t.Context(), []Request{req}, trixie)["hello"]
	if res.Err != nil || res.Release.Version != "1.0-1" {
		t.Fatalf("with the login: %+v", res)
	}
	d, err := m.Download(t.Context(), res.Release.Image, t.TempDir())
	if err != nil {
		t.Fatalf("downloading with the login: %v", err)
	}
	if b, _ := os.ReadFile(d.Path); len(b) == 0 {
		t.Error("downloaded nothing")
	}
	if _, err := m.Fetch(t.Context(), res.Release.Assets["SHA256SUMS"]); err != nil {
		t.Errorf("fetching a small asset with the login: %v", err)
	}
}

// TestMirrorLoginStaysOnItsHost: the mirror redirects downloads to a CDN
// on another port; the login goes to the mirror only.
func TestMirrorLoginStaysOnItsHost(t *testing.T) {
	base := t.TempDir()
	writeMirror(t, base, helloFiles())
	var mu sync.Mutex
	var cdnAuth []string
	fs := http.FileServer(http.Dir(base))
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cdnAuth = append(cdnAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		fs.ServeHTTP(w, r)
	}))
	defer cdn.Close()
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, p, ok := r.BasicAuth(); !ok || p != "s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/index.json") {
			fs.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, cdn.URL+r.URL.Path, http.StatusFound)
	}))
	defer mirror.Close()
	mu2, _ := url.Parse(mirror.URL)
	a, err := ParseAuth("auth.conf", []byte("machine http://"+mu2.Host+" login fleet password s3cret\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMirror(HTTPOptions{Auth: a}, "")
	res := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: mirror.URL}}, trixie)["hello"]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, err := m.Download(t.Context(), res.Release.Image, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(cdnAuth) == 0 {
		t.Fatal("the CDN was never asked: the redirect was not taken")
	}
	for _, h := range cdnAuth {
		if h != "" {
			t.Errorf("the CDN got Authorization %q", h)
		}
	}
}

func TestAuthHintUnreadable(t *testing.T) {
	a := &Auth{skipped: []string{"/etc/sysextd/auth.conf"}}
	r, _ := http.NewRequest(http.MethodGet, "https://m.example/x", nil)
	if h := a.hint(r); !strings.Contains(h, "/etc/sysextd/auth.conf could not be read by this user") {
		t.Errorf("hint = %q", h)
	}
}

func FuzzParseAuth(f *testing.F) {
	f.Add("machine m.example/sysext login fleet password s3cret\n")
	f.Add("# c\nmachine http://127.0.0.1:80\nlogin a\npassword b c\n")
	f.Add("machine https://[::1]:8443/p/ login a password b")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := ParseAuth("auth.conf", []byte(in))
		if err != nil {
			// No word after "password" reaches the error, unless it
			// is also a word the message has for another reason.
			words := strings.Fields(in)
			for i := 1; i < len(words); i++ {
				w := words[i]
				if words[i-1] != "password" || len(w) < 4 || !strings.ContainsFunc(w, unicode.IsDigit) || !strings.ContainsFunc(w, unicode.IsLetter) {
					continue
				}
				if strings.Contains(err.Error(), w) && !strings.Contains(strings.ReplaceAll(in, "password "+w, ""), w) {
					t.Fatalf("password %q in error %q", w, err)
				}
			}
			return
		}
		for _, e := range a.entries {
			if e.login == "" || e.password == "" || e.host == "" {
				t.Fatalf("incomplete entry %+v", e)
			}
			u := &url.URL{Scheme: "https", Host: e.host, Path: e.path + "/x"}
			if e.port != "" {
				u.Host += ":" + e.port
			}
			if e.scheme == "http" {
				u.Scheme = "http"
			}
			if strings.Contains(e.host, ":") {
				continue // an IPv6 literal needs brackets; lookup is not the point here
			}
			if got := a.lookup(u); got == nil {
				t.Fatalf("entry %+v does not match its own URL %s", e, u)
			}
		}
	})
}

// TestLoadAuthUnprivileged: as root, writes a 0600 auth.conf and an 0700
// auth.conf.d, then loads them in a copy of this test binary running as
// nobody (an unprivileged sysextctl list): no error, both named as
// unreadable, and a refused request's hint says so.
func TestLoadAuthUnprivileged(t *testing.T) {
	if os.Getenv("SYSEXTD_AUTH_HELPER") != "" {
		t.Skip("the child runs only TestLoadAuthUnprivilegedChild")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root to run a child as nobody; the unprivileged auth.conf path is not tested")
	}
	dir, err := os.MkdirTemp("", "sysextd-auth-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth.conf"), []byte("machine m.example login u password p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "auth.conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "source.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^TestLoadAuthUnprivilegedChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SYSEXTD_AUTH_HELPER="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLoadAuthUnprivilegedChild") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func TestLoadAuthUnprivilegedChild(t *testing.T) {
	dir := os.Getenv("SYSEXTD_AUTH_HELPER")
	if dir == "" {
		t.Skip("helper for TestLoadAuthUnprivileged")
	}
	if os.Geteuid() == 0 {
		t.Fatal("the child runs as root")
	}
	conf, d := filepath.Join(dir, "auth.conf"), filepath.Join(dir, "auth.conf.d")
	a, warns, err := LoadAuth([]string{conf}, []string{d})
	if err != nil || len(warns) != 0 || a.Len() != 0 {
		t.Fatalf("LoadAuth as nobody = %d entries, %q, %v; want none, no warning, no error", a.Len(), warns, err)
	}
	r, _ := http.NewRequest(http.MethodGet, "https://m.example/x", nil)
	if h := a.hint(r); !strings.Contains(h, conf+", "+d+" could not be read by this user; run as root") {
		t.Errorf("hint = %q, want both named", h)
	}
}
