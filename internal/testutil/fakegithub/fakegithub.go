// Package fakegithub is an in-process stand-in for the parts of the GitHub
// REST API that sysextd uses: latest release, release list, release assets
// (with the 302 to a download host that real GitHub answers) and the
// browser_download_url. It computes sizes and sha256 digests like GitHub,
// answers conditional requests with 304, sends rate-limit headers, and lets a
// test inject faults (latency, rate limits, 5xx, truncated or wrong bodies,
// stalls) at run time. Every method is safe for concurrent use.
//
// Use New for tests (an httptest.Server on 127.0.0.1), NewOn to bind a fixed
// address, or NewUnstarted plus Handler to serve it with your own
// net/http server. URLs in the JSON are derived from the Host header of each
// request, so the same handler works behind any address.
package fakegithub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Asset is one file attached to a release. Exactly one of Data and Path is
// used: Path streams a file from disk so that large assets are not held in
// memory.
type Asset struct {
	Name        string
	Data        []byte
	Path        string
	ContentType string // default application/octet-stream

	// PublishSize and PublishDigest override what the API claims about the
	// asset (a lying release). Zero values publish the truth. OmitDigest
	// publishes no digest at all, like releases uploaded before 2025.
	PublishSize   int64
	PublishDigest string
	OmitDigest    bool
}

// Release is one GitHub release.
type Release struct {
	Tag         string
	Name        string // default Tag
	Draft       bool
	Prerelease  bool
	PublishedAt time.Time // default: the time of Publish
	// MakeLatest is GitHub's make_latest: "true" makes the release latest
	// whatever its date, "false" keeps it from ever being latest, ""
	// (legacy) lets the newest by date be latest.
	MakeLatest string
	Assets     []Asset
}

type asset struct {
	Asset
	id     int64
	owner  string
	repo   string
	tag    string
	size   int64
	digest string // "sha256:<hex>" of the content
	count  int    // download_count
}

type release struct {
	Release
	id     int64
	assets []*asset
}

// Server is the fake. The zero value is not usable; call New, NewOn or
// NewUnstarted.
type Server struct {
	mu           sync.Mutex
	nextID       int64
	repos        map[string][]*release // "owner/repo"
	assets       map[int64]*asset
	downloadHost string
	faults       Faults
	stats        Stats
	requests     []Request
	closing      chan struct{}
	closeOnce    sync.Once
	created      time.Time

	private    map[string]bool   // "owner/repo" -> private
	renames    map[string]string // old "owner/repo" -> new
	secondary  int               // API requests still to answer with a secondary limit
	retryAfter time.Duration
	quota      [2]int // remaining: unauthenticated, authenticated
	quotaSet   bool

	httpSrv *httptest.Server
}

// NewUnstarted returns a fake without a listener; serve Handler yourself.
func NewUnstarted() *Server {
	return &Server{
		nextID:  1000,
		repos:   map[string][]*release{},
		assets:  map[int64]*asset{},
		closing: make(chan struct{}),
		created: time.Now(),
		stats:   Stats{APIByRepo: map[string]int{}},
	}
}

// New starts the fake on a random port of 127.0.0.1. Close it when done.
func New() *Server {
	s := NewUnstarted()
	s.httpSrv = httptest.NewServer(s.Handler())
	return s
}

// NewTLS starts the fake on a random port of 127.0.0.1 over TLS with
// HTTP/2, as api.github.com and its download hosts serve: a client then
// multiplexes its requests over one connection instead of opening one per
// request. CertPEM is the certificate to trust (SSL_CERT_FILE for another
// process); it is valid for 127.0.0.1 only, so SetDownloadHost does not
// apply.
func NewTLS() *Server {
	s := NewUnstarted()
	s.httpSrv = httptest.NewUnstartedServer(s.Handler())
	s.httpSrv.EnableHTTP2 = true
	s.httpSrv.StartTLS()
	return s
}

// CertPEM is the PEM certificate of a server made with NewTLS, nil for
// the others.
func (s *Server) CertPEM() []byte {
	if s.httpSrv == nil || s.httpSrv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.httpSrv.Certificate().Raw})
}

// Client is an http.Client that trusts the fake (for NewTLS).
func (s *Server) Client() *http.Client { return s.httpSrv.Client() }

// NewOn starts the fake on addr, e.g. "127.0.0.1:8089", so that another
// process (a container sharing the host network) can reach it.
func NewOn(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	s := NewUnstarted()
	s.httpSrv = httptest.NewUnstartedServer(s.Handler())
	_ = s.httpSrv.Listener.Close()
	s.httpSrv.Listener = l
	s.httpSrv.Start()
	return s, nil
}

// URL is the API base with a trailing slash, e.g. "http://127.0.0.1:4242/".
// It is "" for a server made with NewUnstarted.
func (s *Server) URL() string {
	if s.httpSrv == nil {
		return ""
	}
	return s.httpSrv.URL + "/"
}

// Close releases stalled requests and stops the listener, if any.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	if s.httpSrv != nil {
		s.httpSrv.CloseClientConnections()
		s.httpSrv.Close()
	}
}

// SetDownloadHost makes asset downloads (browser_download_url and the 302
// target of the asset API) use this host name, with the port of the request,
// instead of the API's host. Use "localhost" against an API on 127.0.0.1 to
// prove that credentials stay on the API origin. "" restores the default.
func (s *Server) SetDownloadHost(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downloadHost = host
}

// Publish adds a release to owner/repo. Assets with a Path are hashed from
// disk now. It panics on an unreadable Path: it is a test helper.
func (s *Server) Publish(owner, repo string, rel Release) {
	if rel.Name == "" {
		rel.Name = rel.Tag
	}
	if rel.PublishedAt.IsZero() {
		rel.PublishedAt = time.Now().UTC().Truncate(time.Second)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	r := &release{Release: rel, id: s.nextID}
	for _, a := range rel.Assets {
		s.nextID++
		sa := &asset{Asset: a, id: s.nextID, owner: owner, repo: repo, tag: rel.Tag}
		sa.size, sa.digest = measure(a)
		if sa.ContentType == "" {
			sa.ContentType = "application/octet-stream"
		}
		r.assets = append(r.assets, sa)
		s.assets[sa.id] = sa
	}
	key := owner + "/" + repo
	s.repos[key] = append(s.repos[key], r)
}

// Unpublish removes every release of owner/repo.
func (s *Server) Unpublish(owner, repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.repos[owner+"/"+repo] {
		for _, a := range r.assets {
			delete(s.assets, a.id)
		}
	}
	delete(s.repos, owner+"/"+repo)
}

func measure(a Asset) (int64, string) {
	h := sha256.New()
	var n int64
	if a.Path != "" {
		f, err := os.Open(a.Path)
		if err != nil {
			panic(fmt.Sprintf("fakegithub: opening asset %s: %v", a.Path, err))
		}
		defer f.Close()
		n, err = io.Copy(h, f)
		if err != nil {
			panic(fmt.Sprintf("fakegithub: hashing asset %s: %v", a.Path, err))
		}
	} else {
		h.Write(a.Data)
		n = int64(len(a.Data))
	}
	return n, "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// latest returns the newest published release that is neither draft nor
// prerelease, or nil. Caller holds s.mu.
func (s *Server) latest(key string) *release {
	var best *release
	for _, r := range s.repos[key] {
		if r.Draft || r.Prerelease || r.MakeLatest == "false" {
			continue
		}
		if r.MakeLatest == "true" {
			if best == nil || best.MakeLatest != "true" || r.id > best.id {
				best = r
			}
			continue
		}
		if best != nil && best.MakeLatest == "true" {
			continue
		}
		if best == nil || r.PublishedAt.After(best.PublishedAt) ||
			(r.PublishedAt.Equal(best.PublishedAt) && r.id > best.id) {
			best = r
		}
	}
	return best
}

// sorted returns the releases of key newest first. Caller holds s.mu.
func (s *Server) sorted(key string) []*release {
	rs := append([]*release(nil), s.repos[key]...)
	sort.SliceStable(rs, func(i, j int) bool {
		return rs[i].PublishedAt.After(rs[j].PublishedAt)
	})
	return rs
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
