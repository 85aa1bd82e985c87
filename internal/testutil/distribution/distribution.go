// Package distribution runs Debian's docker-registry (CNCF distribution)
// on 127.0.0.1 for tests, open or behind htpasswd, and finds oras, the
// independent client tests push with. Neither is faked: a test skips,
// loudly, when one is missing (make testservers provides both).
package distribution

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestCache is where make testservers unpacks docker-registry and
// installs oras (Makefile TEST_CACHE).
func TestCache() string {
	if d := os.Getenv("SYSEXTD_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/sysextd-test"
}

// Registry is a running docker-registry.
type Registry struct {
	Host string // 127.0.0.1:PORT
	// User and Password are the one login ("" when open).
	User, Password string
	// Tokens counts the bearer tokens the token server issued (Token).
	Tokens atomic.Int32
	dir    string
}

// find returns the first of paths that is an executable, else skips.
func find(t testing.TB, what, how string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	t.Skipf("SKIP: %s not found (%s): the real-registry tests do not run", what, how)
	return ""
}

// Oras is the oras binary: on PATH, else in TestCache()/bin.
func Oras(t testing.TB) string {
	return find(t, "oras", "make testservers installs it with go install oras.land/oras/cmd/oras",
		"oras", filepath.Join(TestCache(), "bin", "oras"))
}

// Auth is how the registry asks for a login.
type Auth int

// Auth kinds.
const (
	Open     Auth = iota // no login
	Htpasswd             // HTTP basic auth (htpasswd, bcrypt)
	Token                // bearer tokens from a token server (tokenServer), as ghcr.io and Harbor do
)

// Start runs docker-registry on a free loopback port until the test
// ends; with auth it requires the login it returns (htpasswd, bcrypt).
func Start(t testing.TB, auth bool) *Registry {
	t.Helper()
	if auth {
		return StartWith(t, Htpasswd)
	}
	return StartWith(t, Open)
}

// StartWith is Start with the kind of login the registry asks for.
func StartWith(t testing.TB, kind Auth) *Registry {
	t.Helper()
	bin := find(t, "docker-registry", "make testservers unpacks Debian's docker-registry package",
		"docker-registry", "/usr/bin/docker-registry", filepath.Join(TestCache(), "docker-registry", "usr", "bin", "docker-registry"))
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	r := &Registry{Host: host, dir: dir}
	authConf := ""
	if kind == Token {
		r.User, r.Password = "fleet", "s3cret-"+fmt.Sprint(time.Now().UnixNano())
		authConf = startTokenServer(t, r, dir)
	}
	if kind == Htpasswd {
		r.User, r.Password = "fleet", "s3cret-"+fmt.Sprint(time.Now().UnixNano())
		h, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(r.User+":"+string(h)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		authConf = fmt.Sprintf("auth:\n  htpasswd:\n    realm: sysextd-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), host, authConf)
	cf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", cf)
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Logf("docker-registry log:\n%s", b)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", host, err, b)
		}
	}
	return r
}

// AuthJSON is a containers-auth.json holding r's login, as oras login
// --registry-config writes it.
func (r *Registry) AuthJSON(t testing.TB, path string) {
	t.Helper()
	cmd := exec.Command(Oras(t), "login", "--registry-config", path, "--plain-http", "-u", r.User, "--password-stdin", r.Host)
	cmd.Stdin = strings.NewReader(r.Password)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras login: %v\n%s", err, out)
	}
}

// Oras runs oras with args (plain HTTP to the loopback registry), with
// the registry's login when it has one.
func (r *Registry) Oras(t testing.TB, dir string, args ...string) string {
	t.Helper()
	all := append([]string{}, args...)
	all = append(all, "--plain-http")
	if r.User != "" {
		all = append(all, "-u", r.User, "-p", r.Password)
	}
	cmd := exec.Command(Oras(t), all...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("oras %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
