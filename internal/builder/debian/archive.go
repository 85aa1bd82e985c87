package debian

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ulikunitz/xz"
)

// ErrExpired is wrapped when an InRelease is past its Valid-Until.
var ErrExpired = errors.New("expired")

// Default archive locations.
const (
	DefaultMirror         = "http://deb.debian.org/debian"
	DefaultSecurityMirror = "http://deb.debian.org/debian-security"
)

// Archive reads a Debian archive over HTTP: signed InRelease files,
// Packages indices checked against them, and .deb files checked against the
// indices. Everything downloaded is kept under CacheDir by SHA-256, so a
// second build needs only the InRelease files.
type Archive struct {
	Mirror string // e.g. DefaultMirror
	// SecurityMirror serves DIST-security; "" leaves the security suite out.
	SecurityMirror string
	// Keyring verifies InRelease. It must not be empty.
	Keyring openpgp.EntityList
	// CacheDir holds downloads (created on demand).
	CacheDir string
	Client   *http.Client // default: a client with a 5 min timeout
	// Now is the clock Valid-Until is checked against (default time.Now).
	Now func() time.Time
	// IgnoreValidUntil accepts an InRelease past its Valid-Until, as apt's
	// Acquire::Check-Valid-Until=false does: for snapshot archives
	// (reproducible rebuilds) and testing dists whose mirror lags. Never
	// the default: Valid-Until is what detects a stale or replayed archive.
	// Each expired file accepted is reported to Warn.
	IgnoreValidUntil bool
	// Warn receives warnings (default: discarded).
	Warn func(msg string)
}

// Suite is one archive suite to read: trixie from the main mirror,
// trixie-security from the security mirror.
type Suite struct {
	Mirror, Name string
}

// Suites returns the suites apt would read for dist: DIST and, when a
// security mirror is set, DIST-security.
func (a *Archive) Suites(dist string) []Suite {
	s := []Suite{{a.Mirror, dist}}
	if a.SecurityMirror != "" {
		s = append(s, Suite{a.SecurityMirror, dist + "-security"})
	}
	return s
}

func (a *Archive) client() *http.Client {
	if a.Client != nil {
		return a.Client
	}
	return &http.Client{Timeout: 5 * time.Minute}
}

// Release fetches and verifies dists/SUITE/InRelease.
func (a *Archive) Release(ctx context.Context, s Suite) (*Release, error) {
	url := strings.TrimSuffix(s.Mirror, "/") + "/dists/" + s.Name + "/InRelease"
	data, err := a.get(ctx, url, 16<<20)
	if err != nil {
		return nil, err
	}
	body, _, err := VerifyInRelease(data, a.Keyring)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", url, err)
	}
	rel, err := ParseRelease(body, url)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if !rel.ValidUntil.IsZero() && now().After(rel.ValidUntil) {
		expired := rel.ValidUntil.UTC().Format(time.RFC3339)
		if !a.IgnoreValidUntil {
			return nil, fmt.Errorf("%s %w at %s (Valid-Until): the mirror is stale or replays an old file (--ignore-valid-until accepts it, for snapshot archives)", url, ErrExpired, expired)
		}
		if a.Warn != nil {
			a.Warn(fmt.Sprintf("WARNING: %s expired at %s (Valid-Until) and is used anyway (--ignore-valid-until): a stale or replayed archive is not detected", url, expired))
		}
	}
	return rel, nil
}

// Packages returns the entries of SUITE/COMPONENT/binary-ARCH/Packages,
// downloaded in its xz or gzip form and checked against rel. Every entry
// has Suite and Mirror set.
func (a *Archive) Packages(ctx context.Context, s Suite, rel *Release, component, arch string) ([]*Package, error) {
	base := component + "/binary-" + arch + "/Packages"
	for _, ext := range []string{".gz", ".xz", ""} {
		sum, ok := rel.SHA256[base+ext]
		if !ok {
			continue
		}
		url := strings.TrimSuffix(s.Mirror, "/") + "/dists/" + s.Name + "/" + base + ext
		path, err := a.fetchVerified(ctx, url, sum, "indices")
		if err != nil {
			return nil, err
		}
		if pkgs := loadParsed(path); pkgs != nil {
			for _, p := range pkgs {
				p.Suite, p.Mirror = s.Name, s.Mirror
			}
			return pkgs, nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		var r io.Reader = f
		switch ext {
		case ".xz":
			xr, err := xz.NewReader(f)
			if err != nil {
				return nil, fmt.Errorf("decompressing %s: %w", url, err)
			}
			r = xr
		case ".gz":
			gr, err := gzip.NewReader(f)
			if err != nil {
				return nil, fmt.Errorf("decompressing %s: %w", url, err)
			}
			r = gr
		}
		pkgs, err := ParsePackages(r, url)
		if err != nil {
			return nil, err
		}
		_ = storeParsed(path, pkgs) // best effort: only a warm build is slower without it
		for _, p := range pkgs {
			p.Suite, p.Mirror = s.Name, s.Mirror
		}
		return pkgs, nil
	}
	return nil, fmt.Errorf("%s/dists/%s/InRelease lists no %s: is %s a component and %s an architecture of %s?",
		s.Mirror, s.Name, base, component, arch, s.Name)
}

// Universe reads the Packages indices of every suite of dist for arch
// and indexes them together.
func (a *Archive) Universe(ctx context.Context, dist, component, arch string) (*Universe, error) {
	var all []*Package
	for i, s := range a.Suites(dist) {
		rel, err := a.Release(ctx, s)
		if i > 0 && errors.Is(err, ErrNotFound) {
			continue // no security suite (yet) for a testing dist
		}
		if err != nil {
			return nil, err
		}
		pkgs, err := a.Packages(ctx, s, rel, component, arch)
		if err != nil {
			return nil, err
		}
		all = append(all, pkgs...)
	}
	return NewUniverse(all)
}

// Fetch downloads p's .deb (or finds it in the cache) and returns its
// path. The file's SHA-256 and size equal what the signed index says.
func (a *Archive) Fetch(ctx context.Context, p *Package) (string, error) {
	url := strings.TrimSuffix(p.Mirror, "/") + "/" + p.Filename
	return a.fetchVerified(ctx, url, FileSum{Size: p.Size, Hash: p.SHA256}, "debs")
}

// ErrNotFound is a 404 from the archive.
var ErrNotFound = errors.New("not found (404)")

// HashMismatchError reports a download whose content is not what the
// signed index says.
type HashMismatchError struct {
	URL           string
	Expected, Got string
	ExpectedSize  int64
	GotSize       int64
}

func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("%s: sha256 %s (%d bytes), want %s (%d bytes)", e.URL, e.Got, e.GotSize, e.Expected, e.ExpectedSize)
}

// fetchVerified returns the cached file for sum.Hash, downloading url into
// the cache first when it is missing. The download is hashed while it is
// written to a temporary file and renamed into place only when it matches.
func (a *Archive) fetchVerified(ctx context.Context, url string, sum FileSum, kind string) (string, error) {
	if len(sum.Hash) != 64 {
		return "", fmt.Errorf("%s: no sha256 to check it against", url)
	}
	dir := filepath.Join(a.CacheDir, kind)
	final := filepath.Join(dir, sum.Hash)
	if st, err := os.Stat(final); err == nil && (sum.Size == 0 || st.Size() == sum.Size) {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache %s: %w", dir, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading %s: %s", url, resp.Status)
	}
	tmp, err := os.CreateTemp(dir, ".part-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	limit := sum.Size + 1
	if sum.Size == 0 {
		limit = 1 << 34
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, limit))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != sum.Hash || (sum.Size != 0 && n != sum.Size) {
		return "", &HashMismatchError{URL: url, Expected: sum.Hash, Got: got, ExpectedSize: sum.Size, GotSize: n}
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	return final, nil
}

// get reads a small document (InRelease) into memory, up to limit bytes.
func (a *Archive) get(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("downloading %s: %w", url, ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("downloading %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", url, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("downloading %s: larger than %d bytes", url, limit)
	}
	return data, nil
}

// LoadKeyring reads the first keyring file of paths that exists.
func LoadKeyring(paths ...string) (openpgp.EntityList, string, error) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		kr, err := ReadKeyring(bytes.Clone(b))
		if err != nil {
			return nil, "", fmt.Errorf("reading keyring %s: %w", p, err)
		}
		return kr, p, nil
	}
	return nil, "", fmt.Errorf("no archive keyring found (looked for %s); install debian-archive-keyring or pass --keyring", strings.Join(paths, ", "))
}
