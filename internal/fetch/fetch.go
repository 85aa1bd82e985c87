// Package fetch finds the latest release of an extension on GitHub and
// downloads its assets with verification (SPEC §2, §5).
//
// Release lookups cost one API request per extension and are conditional
// (ETag / If-None-Match): an unchanged release is answered by a 304 and served
// from the cache in Options.CacheDir, together with its cached .manifest and
// release.json bodies, so that nothing else is downloaded. Downloads stream to
// a temporary file in a caller-chosen directory, are hashed while streaming,
// checked against the published size and sha256 digest, and fsynced; the
// caller renames the file into place.
//
// Errors that callers branch on: *RateLimitError, IsNetwork, *DigestMismatchError,
// *SizeMismatchError, ErrTooLarge, ErrNoAsset, ErrNotCached.
package fetch

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v93/github"
)

// Target is the host an extension is chosen for.
type Target struct {
	Codename string // e.g. trixie
	Arch     string // Debian name, e.g. amd64
}

// Request names one extension to look up.
type Request struct {
	Name  string // manifest key, e.g. "hello"
	URL   string // manifest url, https://github.com/OWNER/REPO
	Image string // image name and asset prefix, e.g. "sysext-hello"
}

// Asset is one file of a release.
type Asset struct {
	ID         int64
	Name       string
	URL        string // API URL (answers a redirect to the bytes)
	BrowserURL string // browser_download_url; costs no API quota
	Size       int64
	Digest     string // "sha256:<hex>" or "" when GitHub published none
}

// Release is the latest usable release of an extension for a Target.
type Release struct {
	Name      string // Request.Name
	Repo      string // "OWNER/REPO"
	Tag       string
	Version   string            // PACKAGE_VERSION from the .manifest asset
	BuildTime string            // BUILD_TIME from the .manifest asset, may be ""
	Fields    map[string]string // every KEY=VALUE of the .manifest asset
	Image     Asset             // IMAGE_CODENAME_ARCH.squashfs
	Manifest  Asset             // IMAGE_CODENAME_ARCH.manifest
}

// Result is one answer of LatestAll: exactly one of Release and Err is set.
type Result struct {
	Release *Release
	Err     error
}

// Options configure a GitHub source. Zero values take the defaults noted.
type Options struct {
	APIBase        string        // default https://api.github.com/
	Token          string        // sent only to the API origin; never logged
	CacheDir       string        // e.g. <root>/var/cache/sysextd; "" keeps the cache in memory only
	MaxSize        int64         // download cap, default 2 GiB
	ConnectTimeout time.Duration // TCP connect and TLS handshake, default 10 s
	StallTimeout   time.Duration // no response header or no body byte for this long aborts, default 20 s
	Parallel       int           // concurrent API requests in LatestAll, default 25
	Progress       io.Writer     // progress bar target (a terminal) or nil
	Logger         *slog.Logger  // default: discard
	HTTPClient     *http.Client  // its Transport is used as the base transport, if set
}

// Defaults.
const (
	DefaultAPIBase        = "https://api.github.com/"
	DefaultMaxSize        = 2 << 30
	DefaultConnectTimeout = 10 * time.Second
	DefaultStallTimeout   = 20 * time.Second
	DefaultParallel       = 25
	maxSmallAsset         = 1 << 20 // .manifest and release.json
)

// GitHub is a release source. It is safe for concurrent use.
type GitHub struct {
	opts     Options
	log      *slog.Logger
	base     *url.URL
	client   *github.Client
	download *http.Client // token only to the API origin, no downgrade on redirect
	cache    *cache
	apiSem   chan struct{}
	dlSem    chan struct{}
}

// New returns a GitHub source. It fails on an API base that is not an
// absolute http(s) URL, or that is plain http to a non-loopback host.
func New(opts Options) (*GitHub, error) {
	if opts.APIBase == "" {
		opts.APIBase = DefaultAPIBase
	}
	if !strings.HasSuffix(opts.APIBase, "/") {
		opts.APIBase += "/"
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := url.Parse(opts.APIBase)
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("parsing github api base %q: not an absolute http(s) URL", opts.APIBase)
	}
	if err := checkURL(base); err != nil {
		return nil, fmt.Errorf("checking github api base: %w", err)
	}

	c := newCache(opts.CacheDir)
	rt := buildTransport(opts)
	apiHTTP := &http.Client{Transport: &etagTransport{next: rt, cache: c}}
	ghOpts := []github.ClientOptionsFunc{
		github.WithHTTPClient(apiHTTP),
		github.WithURLs(&opts.APIBase, &opts.APIBase),
		github.WithUserAgent("sysextd"),
	}
	if opts.Token != "" {
		ghOpts = append(ghOpts, github.WithAuthToken(opts.Token))
	}
	client, err := github.NewClient(ghOpts...)
	if err != nil {
		return nil, fmt.Errorf("creating github client: %w", err)
	}
	return &GitHub{
		opts:   opts,
		log:    log,
		base:   base,
		client: client,
		download: &http.Client{
			Transport:     &authTransport{next: rt, origin: origin(base), token: opts.Token},
			CheckRedirect: checkRedirect,
		},
		cache:  c,
		apiSem: make(chan struct{}, opts.Parallel),
		dlSem:  make(chan struct{}, 4*opts.Parallel), // small assets come from the CDN, not the API
	}, nil
}

// ParseRepoURL splits https://github.com/OWNER/REPO (a trailing "/" or
// ".git" tolerated) into its owner and repository.
func ParseRepoURL(u string) (owner, repo string, err error) {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil {
		return "", "", fmt.Errorf("parsing repository url %q: %w", u, err)
	}
	if p.Scheme != "https" || !strings.EqualFold(p.Host, "github.com") {
		return "", "", fmt.Errorf("parsing repository url %q: want https://github.com/OWNER/REPO", u)
	}
	if p.RawQuery != "" || p.Fragment != "" || p.User != nil {
		return "", "", fmt.Errorf("parsing repository url %q: unexpected query, fragment or user info", u)
	}
	path := strings.TrimSuffix(strings.TrimSuffix(p.Path, "/"), ".git")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 2 || !validName(parts[0]) || !validName(parts[1]) {
		return "", "", fmt.Errorf("parsing repository url %q: want https://github.com/OWNER/REPO", u)
	}
	return parts[0], parts[1], nil
}

// validName accepts GitHub owner and repository names.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// imageName is the asset prefix of req: Image, else sysext-NAME.
func (r Request) imageName() string {
	if r.Image != "" {
		return r.Image
	}
	if strings.HasPrefix(r.Name, "sysext-") {
		return r.Name
	}
	return "sysext-" + r.Name
}

var errEmptyURL = errors.New("asset has no download URL")
