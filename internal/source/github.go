// The GitHub provider finds the latest release of an extension on GitHub
// (or GitHub Enterprise) and downloads its assets with verification
// (SPEC §2, §5).
//
// Release lookups cost one API request per extension and are conditional
// (ETag / If-None-Match): an unchanged release is answered by a 304 and served
// from the cache in GitHubOptions.CacheDir, together with its cached .manifest and
// release.json bodies, so that nothing else is downloaded. Downloads stream to
// a temporary file in a caller-chosen directory, are hashed while streaming,
// checked against the published size and sha256 digest, and fsynced; the
// caller renames the file into place.
//
// Errors that callers branch on: *RateLimitError, IsNetwork, *DigestMismatchError,
// *SizeMismatchError, ErrTooLarge, ErrNoAsset, ErrNotCached.

package source

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

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// GitHubOptions configure a GitHub source. Zero values take the defaults noted.
type GitHubOptions struct {
	APIBase        string        // default https://api.github.com/
	Token          string        // sent only to the API origin; never logged
	CacheDir       string        // e.g. <root>/var/cache/sysextd; "" keeps the cache in memory only
	MaxSize        int64         // download cap, default 2 GiB
	ConnectTimeout time.Duration // TCP connect and TLS handshake, default 10 s
	StallTimeout   time.Duration // no response header or no body byte for this long aborts, default 20 s
	Parallel       int           // concurrent API requests in LatestAll, default 25
	// MinRate is the slowest acceptable download, in bytes per second,
	// averaged over RateWindow: a server dripping bytes fails with
	// ErrTooSlow after one window instead of holding the lock. Default 16 KiB/s.
	MinRate    int64
	RateWindow time.Duration // default 15 s
	// Deadline bounds a whole download; default 30 min.
	Deadline time.Duration
	// Enterprise makes APIBase a GitHub Enterprise Server
	// (https://HOST/api/v3/); Hosts are the web hosts whose repository URLs
	// it serves (default: APIBase's host).
	Enterprise bool
	Hosts      []string
	// RequireDigest refuses assets without a published digest.
	RequireDigest bool
	Progress      io.Writer // progress bar target (a terminal) or nil
	// OnProgress, when set, hears the bytes of each image download, at
	// most ten times a second and once at its end (the daemon's API).
	OnProgress func(asset string, done, total int64)
	Logger     *slog.Logger // default: discard
	HTTPClient *http.Client // its Transport is used as the base transport, if set
}

// Defaults.
const (
	DefaultGitHubAPI      = "https://api.github.com/"
	DefaultMaxSize        = 2 << 30
	DefaultConnectTimeout = 10 * time.Second
	DefaultStallTimeout   = 20 * time.Second
	DefaultParallel       = 25
	DefaultMinRate        = 16 << 10
	DefaultRateWindow     = 15 * time.Second
	DefaultDeadline       = 30 * time.Minute
	maxSmallAsset         = MaxSmallAsset // .manifest, release.json, SHA256SUMS
)

// GitHub is a release source. It is safe for concurrent use.
type GitHub struct {
	opts     GitHubOptions
	log      *slog.Logger
	base     *url.URL
	client   *github.Client
	download *http.Client // token only to the API origin, no downgrade on redirect
	cache    *githubCache
	apiSem   chan struct{}
	dlSem    chan struct{}
}

// New returns a GitHub source. It fails on an API base that is not an
// absolute http(s) URL, or that is plain http to a non-loopback host.
func NewGitHub(opts GitHubOptions) (*GitHub, error) {
	if opts.APIBase == "" {
		opts.APIBase = DefaultGitHubAPI
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
	if opts.MinRate <= 0 {
		opts.MinRate = DefaultMinRate
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = DefaultRateWindow
	}
	if opts.Deadline <= 0 {
		opts.Deadline = DefaultDeadline
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := url.Parse(opts.APIBase)
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("parsing github api base %q: not an absolute http(s) URL", opts.APIBase)
	}
	if err := CheckURL(base); err != nil {
		return nil, fmt.Errorf("checking github api base: %w", err)
	}

	c := newGitHubCache(opts.CacheDir)
	rt := buildTransport(opts)
	apiHTTP := &http.Client{Transport: &etagTransport{next: &renameTransport{next: rt, cache: c}, cache: c}}
	ghOpts := []github.ClientOptionsFunc{
		github.WithHTTPClient(apiHTTP),
		github.WithUserAgent("sysextd"),
	}
	if opts.Enterprise {
		ghOpts = append(ghOpts, github.WithEnterpriseURLs(opts.APIBase, opts.APIBase))
		if len(opts.Hosts) == 0 {
			opts.Hosts = []string{strings.ToLower(base.Host)}
		}
	} else {
		ghOpts = append(ghOpts, github.WithURLs(&opts.APIBase, &opts.APIBase))
	}
	if opts.Token != "" {
		ghOpts = append(ghOpts, github.WithAuthToken(opts.Token))
	}
	client, err := github.NewClient(ghOpts...)
	if err != nil {
		return nil, fmt.Errorf("creating github client: %w", err)
	}
	if base, err = url.Parse(client.BaseURL()); err != nil { // with api/v3/ for GHES
		return nil, fmt.Errorf("parsing github api base: %w", err)
	}
	return &GitHub{
		opts:   opts,
		log:    log,
		base:   base,
		client: client,
		download: &http.Client{
			Transport:     &tokenTransport{next: rt, origin: origin(base), token: opts.Token},
			CheckRedirect: CheckRedirect,
		},
		cache:  c,
		apiSem: make(chan struct{}, opts.Parallel),
		dlSem:  make(chan struct{}, 2*opts.Parallel), // small assets: twice the lookups keeps a cold list as fast as 4x did, with less memory
	}, nil
}

// ParseRepoURL splits https://github.com/OWNER/REPO (a trailing "/" or
// ".git" tolerated), or the same on one of hosts (GHES), into its owner and
// repository.
func ParseRepoURL(u string, hosts ...string) (owner, repo string, err error) {
	ref, err := sourceref.Parse(u, hosts...)
	if err != nil {
		return "", "", err
	}
	if ref.Kind != sourceref.KindGitHub {
		return "", "", fmt.Errorf("parsing repository url %q: want https://github.com/OWNER/REPO", u)
	}
	return ref.Owner, ref.Repo, nil
}

// hosts are the web hosts whose repository URLs g serves besides
// github.com (GHES).
func (g *GitHub) hosts() []string { return g.opts.Hosts }

// Hosts reports the GHES web hosts g serves ("" for github.com only).
func (g *GitHub) Hosts() []string { return append([]string(nil), g.opts.Hosts...) }

var errEmptyURL = errors.New("asset has no download URL")
