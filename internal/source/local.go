package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Local is a source of one image file on this machine (sysextctl install
// ./sysext-foo.raw). Its release is the file itself: the version and build
// time come from the image's own extension-release, read by Inspect. The
// digest is taken at lookup, so Download (a verified copy into the
// staging directory) refuses a file changed in between.
type Local struct {
	// Inspect returns the extension-release fields of the image at path
	// (internal/image); injected so that this package stays free of image
	// parsing.
	Inspect func(path string) (map[string]string, error)
	opts    HTTPOptions
}

// NewLocal returns the local-file provider.
func NewLocal(inspect func(path string) (map[string]string, error), maxSize int64) *Local {
	o := HTTPOptions{MaxSize: maxSize, Transport: guard{}}
	o.defaults()
	return &Local{Inspect: inspect, opts: o}
}

// LatestAll answers each request from its file.
func (l *Local) LatestAll(_ context.Context, reqs []Request, t Target) map[string]Result {
	out := make(map[string]Result, len(reqs))
	for _, q := range reqs {
		rel, err := l.Cached(q, t)
		out[q.Name] = Result{Release: rel, Err: err}
	}
	return out
}

// Cached reads the file (no network is involved).
func (l *Local) Cached(req Request, _ Target) (*Release, error) {
	ref, err := sourceref.Parse(req.URL)
	if err != nil || ref.Kind != sourceref.KindLocal {
		return nil, fmt.Errorf("extension %s: %q is not a local file", req.Name, req.URL)
	}
	p, err := filepath.Abs(ref.Path)
	if err != nil {
		return nil, fmt.Errorf("extension %s: %w", req.Name, err)
	}
	if tag := string(sourceref.KindLocal); req.Skips(tag) { // its only release
		return nil, skippedError(req, p, []string{tag})
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("extension %s: %w", req.Name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("extension %s: %w", req.Name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("extension %s: %s is not a regular file", req.Name, p)
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, CopyBufSize)); err != nil {
		return nil, fmt.Errorf("extension %s: reading %s: %w", req.Name, p, err)
	}
	fields, err := l.Inspect(p)
	if err != nil {
		return nil, fmt.Errorf("extension %s: %s: %w", req.Name, p, err)
	}
	img := Asset{Name: filepath.Base(p), URL: p, Size: fi.Size(), Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Origin: p}
	rel := &Release{
		Name: req.Name, Repo: p, Tag: string(sourceref.KindLocal), Fields: fields,
		Version: fields["PACKAGE_VERSION"], BuildTime: fields["BUILD_TIME"],
		Image: img, Assets: map[string]Asset{img.Name: img}, Origin: string(sourceref.KindLocal), Kind: sourceref.KindLocal,
	}
	if rel.Version == "" {
		rel.Version = fields["SYSEXT_VERSION_ID"]
	}
	if rel.Version == "" {
		return nil, fmt.Errorf("extension %s: %s: its extension-release has no PACKAGE_VERSION", req.Name, p)
	}
	return rel, nil
}

// Download copies the file into dir, checking it still has the digest
// taken at lookup.
func (l *Local) Download(ctx context.Context, a Asset, dir string) (*Downloaded, error) {
	return DownloadTo(ctx, &l.opts, a, dir, func(context.Context) (io.ReadCloser, error) {
		return os.Open(a.URL)
	})
}

// Fetch reads a small local file, verified.
func (l *Local) Fetch(_ context.Context, a Asset) ([]byte, error) {
	f, err := os.Open(a.URL)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b strings.Builder
	if _, err := VerifiedCopy(&b, f, a, MaxSmallAsset); err != nil {
		return nil, fmt.Errorf("reading %s: %w", a.URL, err)
	}
	return []byte(b.String()), nil
}
