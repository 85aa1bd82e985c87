package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/spamtagger/sysextd/internal/sourceref"
	"github.com/spamtagger/sysextd/internal/version"
)

// OCI layout (docs/sources.md). One repository per extension image: an
// oci:// URL whose last path component is the image name is that
// repository; any other is a namespace holding URL/IMAGE (so one global
// mirror URL serves every extension). Each release for one codename and
// architecture is an artifact (an OCI image manifest) tagged
// TAG_CODENAME_ARCH (the release tag, made tag-safe); CODENAME_ARCH is a
// moving tag for people. Its layers are found by their title annotation
// (org.opencontainers.image.title), whatever their media types: the image
// IMAGE_CODENAME_ARCH.squashfs and IMAGE_CODENAME_ARCH.manifest, as
// `oras push REG/REPO:TAG_CODENAME_ARCH,CODENAME_ARCH FILES...` makes
// them. A lookup lists the repository's tags and offers the newest release
// (by PACKAGE_VERSION, then BUILD_TIME) among this host's, never what the
// moving tag says. sysextctl mirror and sysext-build publish also set
// OCIArtifactType, the media types below and the release tag annotation.
const (
	OCIArtifactType = "application/vnd.spamtagger.sysext.v1"
	// OCISignatureMediaType marks SHA256SUMS and its signatures.
	OCISignatureMediaType = "application/vnd.spamtagger.sysext.sums.v1"
	OCIImageMediaType     = "application/vnd.spamtagger.sysext.squashfs"
	OCIManifestMediaType  = "application/vnd.spamtagger.sysext.manifest"
	OCITagAnnotation      = "com.spamtagger.sysext.tag"
	// OCIReleaseMediaType marks release.json, which carries the rollout
	// (phased_percentage, withdrawn; docs/fleet.md) and is listed in
	// SHA256SUMS. The two annotations below repeat its rollout on the
	// artifact for people and registry tools; sysextd reads the rollout
	// only from the verified release.json, never from an annotation.
	OCIReleaseMediaType    = "application/vnd.spamtagger.sysext.release.v1+json"
	OCIPhasedAnnotation    = "com.spamtagger.sysext.phased_percentage"
	OCIWithdrawnAnnotation = "com.spamtagger.sysext.withdrawn"
)

// OCIConfig is how the OCI source reaches registries.
type OCIConfig struct {
	// Logins are the registry logins (nil: none).
	Logins *RegistryLogins
	// Insecure lists registries (host:port) reached over plain HTTP: LAN
	// registries only (sysextd.toml insecure). Loopback always is.
	Insecure []string
	// Warn is told each time an Insecure registry is used.
	Warn func(msg string)
}

// OCI is the OCI registry source (oras-go). Certificates are checked
// against the system CA store.
type OCI struct {
	opts     HTTPOptions
	cfg      OCIConfig
	insecure map[string]bool
	client   *auth.Client
	cacheDir string
	small    smallCache
}

// NewOCI returns the OCI provider. cacheDir ("" for none) keeps the last
// manifest chosen per repository and host for Cached, and small layers by
// digest.
func NewOCI(opts HTTPOptions, cfg OCIConfig, cacheDir string) *OCI {
	opts.defaults()
	o := &OCI{opts: opts, cfg: cfg, insecure: map[string]bool{}, cacheDir: cacheDir}
	for _, h := range cfg.Insecure {
		o.insecure[strings.ToLower(strings.TrimSpace(h))] = true
	}
	// oras-go's auth client answers a registry's challenge: basic auth,
	// or the bearer-token exchange ghcr.io and Harbor ask for.
	o.client = &auth.Client{
		Client:     &http.Client{Transport: ociGuard{o.insecure, opts.Transport}},
		Cache:      auth.NewCache(),
		Credential: cfg.Logins.Credential,
	}
	o.client.SetUserAgent("sysextd")
	if cacheDir != "" {
		o.small = smallCache{dir: filepath.Join(cacheDir, "oci-blobs")}
	}
	return o
}

// ociGuard is Guard, but lets plain http through to the registries the
// configuration names insecure.
type ociGuard struct {
	insecure map[string]bool
	next     http.RoundTripper
}

func (g ociGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && g.insecure[strings.ToLower(req.URL.Host)] {
		return g.next.RoundTrip(req)
	}
	return guard{g.next}.RoundTrip(req)
}

func (o *OCI) repo(ref sourceref.Ref) (*remote.Repository, error) {
	r, err := remote.NewRepository(ref.Host + "/" + ref.Path)
	if err != nil {
		return nil, err
	}
	r.Client = o.client
	host := ref.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	r.PlainHTTP = sourceref.IsLoopback(host) || o.insecure[ref.Host]
	if o.insecure[ref.Host] && !sourceref.IsLoopback(host) && o.cfg.Warn != nil {
		o.cfg.Warn(fmt.Sprintf("registry %s is used over plain HTTP (insecure in sysextd.toml): anyone on the network path can read and alter what it serves", ref.Host))
	}
	return r, nil
}

// err wraps what oras-go returned for the registry of ref.
func (o *OCI) err(ref sourceref.Ref, err error) error {
	return o.cfg.Logins.registryError(ref.Host, err)
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// OCITag makes a release tag, codename and architecture into an OCI tag:
// TAG_CODENAME_ARCH with other characters as "-", at most 128 long.
func OCITag(tag string, t Target) string {
	s := tagUnsafe.ReplaceAllString(tag, "-") + "_" + t.Codename + "_" + t.Arch
	s = strings.TrimLeft(s, ".-")
	if len(s) > 128 {
		s = s[len(s)-128:]
	}
	return s
}

// MovingTag is the tag people read as the newest release for t.
func MovingTag(t Target) string { return t.Codename + "_" + t.Arch }

// LatestAll looks each request up, 8 at a time.
func (o *OCI) LatestAll(ctx context.Context, reqs []Request, t Target) map[string]Result {
	return lookupAll(reqs, 8, func(q Request) (*Release, error) { return o.latest(ctx, q, t, false) })
}

// Cached answers from the manifest last chosen.
func (o *OCI) Cached(req Request, t Target) (*Release, error) {
	return o.latest(context.Background(), req, t, true)
}

// OCIRepository is the repository of image under an oci:// ref: ref
// itself when its last component is the image name or it names a tag,
// else ref/IMAGE.
func OCIRepository(ref sourceref.Ref, image string) sourceref.Ref {
	image = strings.ToLower(image)
	if ref.Tag != "" || ref.Path == image || strings.HasSuffix(ref.Path, "/"+image) {
		return ref
	}
	ref.Path += "/" + image
	ref.URL += "/" + image
	return ref
}

func (o *OCI) latest(ctx context.Context, req Request, t Target, offline bool) (*Release, error) {
	ref, err := sourceref.Parse(req.URL)
	if err != nil || ref.Kind != sourceref.KindOCI {
		return nil, fmt.Errorf("extension %s: %q is not an oci:// URL", req.Name, req.URL)
	}
	ref = OCIRepository(ref, req.ImageName())
	cacheFile := ""
	if o.cacheDir != "" {
		cacheFile = filepath.Join(o.cacheDir, "oci", keyOf(ref.URL+":"+ref.Tag+":"+MovingTag(t)+":"+req.Version)+".json")
	}
	if offline {
		var c cachedChoice
		b, err := readFileCapped(cacheFile, 2*maxIndex)
		if cacheFile == "" || err != nil || json.Unmarshal(b, &c) != nil {
			return nil, fmt.Errorf("extension %s: %w", req.Name, ErrNotCached)
		}
		return o.cached(ctx, req, t, ref, c)
	}
	repo, err := o.repo(ref)
	if err != nil {
		return nil, fmt.Errorf("extension %s: %w", req.Name, err)
	}
	tags := []string{ref.Tag}
	if ref.Tag == "" {
		if tags, err = o.hostTags(ctx, repo, ref, t); err != nil {
			return nil, fmt.Errorf("extension %s: %w", req.Name, err)
		}
	}
	// Each tag's manifest and .manifest blob, 4 at a time.
	type answer struct {
		rel  *Release
		body []byte
		err  error
	}
	answers := make([]answer, len(tags))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, tag := range tags {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			body, err := o.manifest(ctx, repo, ref, tag)
			if err != nil {
				answers[i].err = fmt.Errorf("extension %s: %w", req.Name, err)
				return
			}
			rel, err := o.resolve(ctx, req, t, ref, tag, body, false)
			answers[i] = answer{rel, body, err}
		})
	}
	wg.Wait()
	var best *Release
	var bestChoice cachedChoice
	var usable []cachedChoice
	var refused, skipped []string
	for i, a := range answers {
		var le *LayoutError
		switch {
		case errors.As(a.err, &le):
			refused = append(refused, le.Found)
			continue
		case errors.Is(a.err, ErrNotFound) && ref.Tag == "":
			continue // deleted since the listing
		case a.err != nil:
			return nil, a.err
		case req.Version != "" && a.rel.Version != req.Version:
			continue
		}
		choice := cachedChoice{Tag: tags[i], Manifest: a.body}
		usable = append(usable, choice)
		if req.Skips(a.rel.Tag) {
			skipped = append(skipped, a.rel.Tag)
			continue
		}
		if best == nil || newer(a.rel, best) {
			best, bestChoice = a.rel, choice
		}
	}
	if best == nil {
		if len(skipped) > 0 {
			return nil, skippedError(req, ociWhere(ref), skipped)
		}
		return nil, o.noRelease(req, t, ref, tags, refused)
	}
	if cacheFile != "" {
		for _, c := range usable {
			if c.Tag != bestChoice.Tag {
				bestChoice.Others = append(bestChoice.Others, c)
			}
		}
		if b, err := json.Marshal(bestChoice); err == nil {
			_ = writeFileAtomic(cacheFile, b)
		}
	}
	return best, nil
}

// newer reports whether a is a newer release than b: by PACKAGE_VERSION,
// then BUILD_TIME; by publication time when a version does not parse.
func newer(a, b *Release) bool {
	c, err := version.Stamp{Version: a.Version, BuildTime: a.BuildTime}.Compare(version.Stamp{Version: b.Version, BuildTime: b.BuildTime})
	if err != nil {
		return a.Published.After(b.Published)
	}
	return c > 0
}

// hostTags lists ref's tags for t: TAG_CODENAME_ARCH, else (a repository
// only people push to) the moving CODENAME_ARCH alone.
func (o *OCI) hostTags(ctx context.Context, repo *remote.Repository, ref sourceref.Ref, t Target) ([]string, error) {
	moving := MovingTag(t)
	var tags []string
	hasMoving := false
	err := repo.Tags(ctx, "", func(page []string) error {
		for _, tag := range page {
			switch {
			case tag == moving:
				hasMoving = true
			case strings.HasSuffix(tag, "_"+moving):
				tags = append(tags, tag)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", ref.URL, o.err(ref, err))
	}
	if len(tags) == 0 && hasMoving {
		tags = []string{moving}
	}
	sort.Strings(tags)
	return tags, nil
}

// manifest reads the manifest ref:tag names, verified against its digest.
func (o *OCI) manifest(ctx context.Context, repo *remote.Repository, ref sourceref.Ref, tag string) ([]byte, error) {
	desc, rc, err := repo.FetchReference(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("resolving %s:%s: %w", ref.URL, tag, o.err(ref, err))
	}
	defer rc.Close()
	body, err := readVerified(rc, desc, maxIndex)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s:%s: %w", ref.URL, tag, o.err(ref, err))
	}
	return body, nil
}

// LayoutError: an artifact whose layers are not this host's image and
// .manifest. Found says what it holds instead.
type LayoutError struct {
	Found string
}

func (e *LayoutError) Error() string { return e.Found }

// noRelease says which tags and layer titles were expected, and what was
// found instead.
func (o *OCI) noRelease(req Request, t Target, ref sourceref.Ref, tags, refused []string) error {
	p := t.Prefix(req.ImageName())
	want := fmt.Sprintf("want an artifact tagged TAG_%s (a release tag; %s may also point at the newest) whose layers are titled %s.squashfs and %s.manifest (docs/sources.md)",
		MovingTag(t), MovingTag(t), p, p)
	if ref.Tag != "" {
		want = fmt.Sprintf("want its layers titled %s.squashfs and %s.manifest (docs/sources.md)", p, p)
	}
	where := ociWhere(ref)
	switch {
	case req.Version != "" && len(refused) < len(tags):
		return fmt.Errorf("extension %s: no tag of %s for %s holds PACKAGE_VERSION %s: %w", req.Name, where, MovingTag(t), req.Version, ErrNoAsset)
	case len(tags) == 0:
		return fmt.Errorf("extension %s: %s has no tag for %s: %s: %w", req.Name, where, MovingTag(t), want, ErrNoAsset)
	}
	if len(refused) > 3 {
		refused = append(refused[:3], fmt.Sprintf("and %d more", len(refused)-3))
	}
	return fmt.Errorf("extension %s: %s holds no usable release: %s; found %s: %w", req.Name, where, want, strings.Join(refused, "; "), ErrNoAsset)
}

// resolve reads one artifact's manifest: its release tag, date and layers
// by title, then the .manifest layer (Resolve).
func (o *OCI) resolve(ctx context.Context, req Request, t Target, ref sourceref.Ref, tag string, body []byte, offline bool) (*Release, error) {
	c, err := artifactCandidate(req, t, ref, tag, body)
	if err != nil {
		return nil, err
	}
	base := Release{Repo: ref.URL, Origin: req.URL, Kind: sourceref.KindOCI}
	return Resolve(ctx, req, t, c, base, func(ctx context.Context, a Asset) ([]byte, error) {
		if offline {
			if b, ok := o.small.get(a); ok {
				return b, nil
			}
			return nil, fmt.Errorf("asset %s: %w", a.Name, ErrNotCached)
		}
		return o.Fetch(ctx, a)
	})
}

// artifactCandidate reads the manifest body of ref:tag: its release tag
// and date, and its layers by title. An artifact without this host's
// image and .manifest (or no artifact at all) is a *LayoutError.
func artifactCandidate(req Request, t Target, ref sourceref.Ref, tag string, body []byte) (*Candidate, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, &LayoutError{Found: fmt.Sprintf("%s is not an OCI image manifest (%v)", tag, err)}
	}
	if m.MediaType == ocispec.MediaTypeImageIndex || m.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
		return nil, &LayoutError{Found: fmt.Sprintf("%s is an image index, not one artifact", tag)}
	}
	c := &Candidate{Tag: m.Annotations[OCITagAnnotation]}
	if t, err := time.Parse(time.RFC3339, m.Annotations[ocispec.AnnotationCreated]); err == nil {
		c.Published = t
	}
	if c.Tag == "" {
		c.Tag = strings.TrimSuffix(tag, "_"+MovingTag(t))
	}
	var titles []string
	for _, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		if !safeComponent(name) || l.Digest.Validate() != nil || l.Size < 0 {
			titles = append(titles, fmt.Sprintf("%q", name))
			continue
		}
		titles = append(titles, name)
		c.Assets = append(c.Assets, Asset{Name: name, URL: ref.URL + "@" + l.Digest.String(), Size: l.Size, Digest: l.Digest.String()})
	}
	if !c.Usable(req, t) {
		return nil, &LayoutError{Found: fmt.Sprintf("%s has layers titled [%s]", tag, strings.Join(titles, ", "))}
	}
	return c, nil
}

func readVerified(rc io.Reader, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size > limit {
		return nil, fmt.Errorf("%d bytes: %w", desc.Size, ErrTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, Classify(err)
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	if desc.Digest != "" && desc.Digest.Validate() == nil && desc.Digest.Algorithm().FromBytes(b) != desc.Digest {
		return nil, &DigestMismatchError{Asset: "manifest", Want: desc.Digest.String(), Got: desc.Digest.Algorithm().FromBytes(b).String()}
	}
	return b, nil
}

func (o *OCI) blob(ctx context.Context, a Asset) (io.ReadCloser, error) {
	refStr, dgst, ok := strings.Cut(a.URL, "@")
	if !ok {
		return nil, fmt.Errorf("asset %s: %q names no digest", a.Name, a.URL)
	}
	ref, err := sourceref.Parse(refStr)
	if err != nil {
		return nil, err
	}
	repo, err := o.repo(ref)
	if err != nil {
		return nil, err
	}
	rc, err := repo.Blobs().Fetch(ctx, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.Digest(dgst), Size: a.Size})
	if err != nil {
		return nil, o.err(ref, err)
	}
	return rc, nil
}

// Download streams a layer into dir, verified against its digest.
func (o *OCI) Download(ctx context.Context, a Asset, dir string) (*Downloaded, error) {
	return DownloadTo(ctx, &o.opts, a, dir, func(ctx context.Context) (io.ReadCloser, error) { return o.blob(ctx, a) })
}

// Fetch returns a small layer's verified bytes, cached by digest.
func (o *OCI) Fetch(ctx context.Context, a Asset) ([]byte, error) {
	if b, ok := o.small.get(a); ok {
		return b, nil
	}
	if a.Size > MaxSmallAsset {
		return nil, fmt.Errorf("asset %s (%d bytes): %w", a.Name, a.Size, ErrTooLarge)
	}
	rc, err := o.blob(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", a.Name, err)
	}
	defer rc.Close()
	var b strings.Builder
	if _, err := VerifiedCopy(&b, rc, a, MaxSmallAsset); err != nil {
		return nil, fmt.Errorf("fetching %s: %w", a.Name, err)
	}
	o.small.put(a, []byte(b.String()))
	return []byte(b.String()), nil
}
