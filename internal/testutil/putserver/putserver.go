// Package putserver is a web server that accepts HTTP PUT into a
// directory, as nginx with "dav_methods PUT MKCOL" (without
// create_full_put_path) or Apache mod_dav do, for the tests of
// sysextctl mirror's upload target: GET and HEAD serve the files, PUT
// writes one through a temporary file and a rename (409 when its
// directory is missing), MKCOL creates a directory (405 when it exists).
package putserver

import (
	"crypto/subtle"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Server is a running PUT server over Dir.
type Server struct {
	*httptest.Server
	Dir string

	mu       sync.Mutex
	token    string
	user, pw string
	readUser string // reads need basic auth as readUser:readPw
	readPw   string
	fail     func(w http.ResponseWriter, r *http.Request) bool
	puts     []string
}

// New serves dir on a loopback port until the test ends.
func New(t testing.TB, dir string) *Server {
	s := &Server{Dir: dir}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// RequireToken makes every write (PUT, MKCOL) need "Authorization: Bearer
// token"; reads stay open, as with nginx's limit_except GET.
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// RequireBasic makes every write need basic auth with user and pw.
func (s *Server) RequireBasic(user, pw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pw = user, pw
}

// RequireReadLogin makes every read (GET, HEAD) need basic auth with user
// and pw, as a private mirror behind nginx's auth_basic.
func (s *Server) RequireReadLogin(user, pw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readUser, s.readPw = user, pw
}

// Fail installs f, which sees every authorized request first and answers
// it instead of the server when it returns true.
func (s *Server) Fail(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

// Puts returns the paths written by PUT so far, in order.
func (s *Server) Puts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.puts...)
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	token, user, pw := s.token, s.user, s.pw
	s.mu.Unlock()
	if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) != 1 {
		return false
	}
	if user != "" {
		u, p, ok := r.BasicAuth()
		return ok && u == user && p == pw
	}
	return true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	s.mu.Lock()
	ru, rp := s.readUser, s.readPw
	s.mu.Unlock()
	if u, p, ok := r.BasicAuth(); read && ru != "" && (!ok || u != ru || p != rp) {
		w.Header().Set("WWW-Authenticate", `Basic realm="mirror"`)
		http.Error(w, "401 Authorization Required", http.StatusUnauthorized)
		return
	}
	if !read && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="mirror"`)
		http.Error(w, "401 Authorization Required", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil && fail(w, r) {
		return
	}
	clean := path.Clean("/" + r.URL.Path)
	p := filepath.Join(s.Dir, filepath.FromSlash(clean))
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, p)
	case http.MethodPut:
		if strings.HasSuffix(r.URL.Path, "/") {
			http.Error(w, "PUT to a collection", http.StatusMethodNotAllowed)
			return
		}
		if fi, err := os.Stat(filepath.Dir(p)); err != nil || !fi.IsDir() {
			http.Error(w, "409 Conflict", http.StatusConflict)
			return
		}
		f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer os.Remove(f.Name())
		_, err = f.ReadFrom(r.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), p)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.mu.Lock()
		s.puts = append(s.puts, clean)
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	case "MKCOL":
		err := os.Mkdir(p, 0o755)
		switch {
		case os.IsExist(err):
			http.Error(w, "405 Not Allowed", http.StatusMethodNotAllowed)
		case os.IsNotExist(err):
			http.Error(w, "409 Conflict", http.StatusConflict)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	default:
		http.Error(w, "405 Not Allowed", http.StatusMethodNotAllowed)
	}
}
