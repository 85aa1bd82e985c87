package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// RegistryLogins are the OCI registry logins, read from files in the
// containers-auth.json format (what `podman login --authfile`, `skopeo
// login --authfile` and `oras login --registry-config` write): the first
// file holding a login for a registry wins. The login is handed to
// oras-go's auth client, which sends it as basic auth or trades it for a
// bearer token, whichever the registry asks for.
type RegistryLogins struct {
	files    []loginFile
	searched []string // every file looked at, in order, for messages
	skipped  []string // files this process may not read

	mu   sync.Mutex
	used map[string]string // registry -> file whose login was sent
}

type loginFile struct {
	path  string
	store credentials.Store
}

// LoginFile is one place logins are read from. System files (the
// daemon's /etc/sysextd/auth.json, a systemd credential) are read whole
// by sysextd and must not be readable by others; user files (Docker's
// and Podman's) may name credential helpers, which are run.
type LoginFile struct {
	Path string // as read (under a --root when one is set)
	Name string // as shown in messages; Path when empty
	User bool
}

// RegistryCredential is the systemd credential (LoadCredential=) sysextd
// also reads registry logins from.
const RegistryCredential = "registry-auth"

// RegistryLoginFiles lists where logins are read from, first found wins:
// system (/etc/sysextd/auth.json, under a --root when one is set), then
// the unit's registry-auth credential ($CREDENTIALS_DIRECTORY), then with
// user (interactive use) the files podman, skopeo, oras and docker log in
// to: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
// ~/.config/containers/auth.json, then $DOCKER_CONFIG/config.json or
// ~/.docker/config.json.
func RegistryLoginFiles(system string, getenv func(string) string, user bool) []LoginFile {
	files := []LoginFile{{Path: system}}
	if d := getenv("CREDENTIALS_DIRECTORY"); d != "" {
		p := filepath.Join(d, RegistryCredential)
		files = append(files, LoginFile{Path: p, Name: "credential " + RegistryCredential + " (" + p + ")"})
	}
	if !user {
		return files
	}
	var paths []string
	if f := getenv("REGISTRY_AUTH_FILE"); f != "" {
		paths = append(paths, f)
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		paths = append(paths, filepath.Join(d, "containers", "auth.json"))
	}
	home := getenv("HOME")
	if home != "" {
		paths = append(paths, filepath.Join(home, ".config", "containers", "auth.json"))
	}
	if d := getenv("DOCKER_CONFIG"); d != "" {
		paths = append(paths, filepath.Join(d, "config.json"))
	} else if home != "" {
		paths = append(paths, filepath.Join(home, ".docker", "config.json"))
	}
	for _, p := range paths {
		files = append(files, LoginFile{Path: p, User: true})
	}
	return files
}

// maxLoginFile bounds a login file.
const maxLoginFile = 1 << 20

// LoadRegistryLogins reads the login files in order. A file that does not
// exist is skipped; one this process may not read is named by a refused
// request's message; a malformed one is an error naming it. Warnings are
// about system files others may read.
func LoadRegistryLogins(files []LoginFile) (*RegistryLogins, []string, error) {
	l := &RegistryLogins{used: map[string]string{}}
	var warns []string
	for _, f := range files {
		name := f.Name
		if name == "" {
			name = f.Path
		}
		l.searched = append(l.searched, name)
		fi, err := os.Stat(f.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, fs.ErrPermission) {
			l.skipped = append(l.skipped, name)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("registry logins: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, nil, fmt.Errorf("registry logins: %s: not a regular file", name)
		}
		if f.User {
			s, err := credentials.NewStore(f.Path, credentials.StoreOptions{})
			if errors.Is(err, fs.ErrPermission) {
				l.skipped = append(l.skipped, name)
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("registry logins: %s: %w", name, err)
			}
			l.files = append(l.files, loginFile{name, s})
			continue
		}
		b, err := readFileCapped(f.Path, maxLoginFile)
		if errors.Is(err, fs.ErrPermission) {
			l.skipped = append(l.skipped, name)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("registry logins: %s: %w", name, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			warns = append(warns, fmt.Sprintf("%s holds registry passwords and is readable by others (mode %#o): chmod 600 it", name, fi.Mode().Perm()))
		}
		s, err := credentials.NewMemoryStoreFromDockerConfig(b)
		if err != nil {
			return nil, nil, fmt.Errorf("registry logins: %s: not a containers-auth.json file: %w", name, err)
		}
		l.files = append(l.files, loginFile{name, s})
	}
	return l, warns, nil
}

// Credential is the oras-go credential function: the first file's login
// for the registry, remembered so that a refusal can name its file.
func (l *RegistryLogins) Credential(ctx context.Context, hostport string) (auth.Credential, error) {
	if l == nil {
		return auth.EmptyCredential, nil
	}
	addr := credentials.ServerAddressFromHostname(hostport)
	for _, f := range l.files {
		c, err := f.store.Get(ctx, addr)
		if err != nil {
			return auth.EmptyCredential, fmt.Errorf("reading the login for %s from %s: %w", hostport, f.path, err)
		}
		if c != auth.EmptyCredential {
			l.mu.Lock()
			l.used[hostport] = f.path
			l.mu.Unlock()
			return c, nil
		}
	}
	return auth.EmptyCredential, nil
}

// explain says which login a refused request used, or where none was found.
func (l *RegistryLogins) explain(host string) string {
	if l != nil {
		l.mu.Lock()
		f, ok := l.used[host]
		l.mu.Unlock()
		if ok {
			return "the login for " + host + " from " + f + " was refused"
		}
		if len(l.skipped) > 0 {
			return fmt.Sprintf("no login for %s found; %s could not be read by this user (run as root)", host, strings.Join(l.skipped, ", "))
		}
	}
	where := "nowhere"
	if l != nil && len(l.searched) > 0 {
		where = strings.Join(l.searched, ", ")
	}
	return fmt.Sprintf("no login for %s found in %s; add one with: oras login --registry-config /etc/sysextd/auth.json %s", host, where, host)
}

// RegistryError is a failure talking to an OCI registry; Registry is its
// host[:port]. Err says what (a *RegistryAuthError, *TLSError,
// *NetworkError, ErrNotFound, ...).
type RegistryError struct {
	Registry string
	Err      error
}

func (e *RegistryError) Error() string { return e.Err.Error() }
func (e *RegistryError) Unwrap() error { return e.Err }

// RegistryAuthError: the registry answered 401 or 403. Login says which
// login was sent (its file) or where none was found.
type RegistryAuthError struct {
	Registry string
	Status   int
	Login    string
	Err      error
}

func (e *RegistryAuthError) Error() string {
	return fmt.Sprintf("registry %s refused access (%d %s): %s", e.Registry, e.Status, http.StatusText(e.Status), e.Login)
}
func (e *RegistryAuthError) Unwrap() error { return e.Err }

// TLSError: the registry's certificate could not be verified, or it does
// not speak TLS.
type TLSError struct {
	Registry string
	Err      error
}

func (e *TLSError) Error() string {
	var rh tls.RecordHeaderError
	if errors.As(e.Err, &rh) {
		return fmt.Sprintf("registry %s does not speak TLS (plain HTTP?): list it in insecure = [%q] of /etc/sysextd/sysextd.toml only if it is on a trusted LAN", e.Registry, e.Registry)
	}
	return fmt.Sprintf("TLS with registry %s failed: %v (certificates are checked against the system CA store: add the registry's CA to /usr/local/share/ca-certificates/ and run update-ca-certificates)", e.Registry, rootCause(e.Err))
}
func (e *TLSError) Unwrap() error { return e.Err }

// rootCause is the innermost certificate error when there is one.
func rootCause(err error) error {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return ua
	case errors.As(err, &he):
		return he
	case errors.As(err, &ci):
		return ci
	}
	return err
}

func isTLS(err error) bool {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cv) || errors.As(err, &rh)
}

// registryError turns what oras-go returns for host into the errors
// callers branch on, wrapped in a *RegistryError.
func (l *RegistryLogins) registryError(host string, err error) error {
	if err == nil {
		return nil
	}
	var re *RegistryError
	if errors.As(err, &re) {
		return err
	}
	var er *errcode.ErrorResponse
	var out error
	switch {
	case errors.As(err, &er) && er.StatusCode == http.StatusTooManyRequests:
		out = &RateLimitError{Reset: time.Now().Add(time.Minute), Err: err}
	case errors.As(err, &er) && er.StatusCode >= 500:
		out = &NetworkError{Err: fmt.Errorf("registry %s: %d %s", host, er.StatusCode, http.StatusText(er.StatusCode))}
	case errors.As(err, &er) && (er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden):
		out = &RegistryAuthError{Registry: host, Status: er.StatusCode, Login: l.explain(host), Err: err}
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		out = &RegistryAuthError{Registry: host, Status: http.StatusUnauthorized, Login: l.explain(host), Err: err}
	case errors.As(err, &er) && er.StatusCode == http.StatusNotFound:
		out = fmt.Errorf("registry %s: %s: %w", host, summary(er), ErrNotFound)
	case errors.Is(err, errdef.ErrNotFound):
		out = fmt.Errorf("registry %s: %s: %w", host, strings.TrimSuffix(err.Error(), ": "+errdef.ErrNotFound.Error()), ErrNotFound)
	case isTLS(err) && !noSystemRoots():
		out = &TLSError{Registry: host, Err: err}
	case errors.As(err, &er):
		out = &answerError{msg: "registry " + host + ": " + summary(er), err: err}
	default:
		out = Classify(err)
	}
	return &RegistryError{Registry: host, Err: out}
}

// summary is an error answer without its detail maps: method, path,
// status and the registry's messages.
func summary(er *errcode.ErrorResponse) string {
	s := fmt.Sprintf("%d %s", er.StatusCode, http.StatusText(er.StatusCode))
	if er.URL != nil {
		s = er.Method + " " + er.URL.Path + ": " + s
	}
	for _, e := range er.Errors {
		if e.Message != "" {
			s += ": " + e.Message
		}
	}
	return s
}

// answerError is a registry's error answer, told without its detail maps.
type answerError struct {
	msg string
	err error
}

func (e *answerError) Error() string { return e.msg }
func (e *answerError) Unwrap() error { return e.err }
