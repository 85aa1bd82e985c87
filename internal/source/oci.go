package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// OCI layout (docs/sources.md). One repository per extension image: an
// oci:// URL whose last path component is the image name is that
// repository; any other is a namespace holding URL/IMAGE (so one global
// mirror URL serves every extension). Each release for one codename and architecture is
// an artifact: an OCI image manifest with artifactType OCIArtifactType
// whose layers are the image (OCIImageMediaType) and its .manifest
// (OCIManifestMediaType), each titled with its asset name
// (org.opencontainers.image.title). It is tagged TAG_CODENAME_ARCH (the
// release tag, made tag-safe) and, moving, CODENAME_ARCH: a lookup resolves
// the moving tag. The release tag is in the manifest annotation
// OCITagAnnotation.
const (
	OCIArtifactType = "application/vnd.spamtagger.sysext.v1"
	// OCISignatureMediaType marks SHA256SUMS and its signatures.
	OCISignatureMediaType = "application/vnd.spamtagger.sysext.sums.v1"
	OCIImageMediaType     = "application/vnd.spamtagger.sysext.squashfs"
	OCIManifestMediaType  = "application/vnd.spamtagger.sysext.manifest"
	OCITagAnnotation      = "com.spamtagger.sysext.tag"
)

// OCI is the OCI registry source (oras-go). Credentials come from the
// Docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json) and
// Podman's auth file ($REGISTRY_AUTH_FILE, else
// $XDG_RUNTIME_DIR/containers/auth.json), with their credential helpers.
// Plain http is used for loopback registries only.
type OCI struct {
	opts     HTTPOptions
	client   *auth.Client
	cacheDir string
	small    smallCache
}

// NewOCI returns the OCI provider. cacheDir ("" for none) keeps the last
// manifest per repository and tag for Cached, and small layers by digest.
func NewOCI(opts HTTPOptions, cacheDir string) *OCI {
	opts.defaults()
	c := &auth.Client{
		Client: &http.Client{Transport: guard{opts.Transport}},
		Cache:  auth.NewCache(),
	}
	c.SetUserAgent("sysextd")
	if store := credentialStore(); store != nil {
		c.Credential = credentials.Credential(store)
	}
	o := &OCI{opts: opts, client: c, cacheDir: cacheDir}
	if cacheDir != "" {
		o.small = smallCache{dir: filepath.Join(cacheDir, "oci-blobs")}
	}
	return o
}

// credentialStore combines the Docker and Podman auth files that exist.
func credentialStore() credentials.Store {
	var stores []credentials.Store
	if s, err := credentials.NewStoreFromDocker(credentials.StoreOptions{}); err == nil {
		stores = append(stores, s)
	}
	podman := os.Getenv("REGISTRY_AUTH_FILE")
	if podman == "" && os.Getenv("XDG_RUNTIME_DIR") != "" {
		podman = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "containers", "auth.json")
	}
	if podman != "" {
		if _, err := os.Stat(podman); err == nil {
			if s, err := credentials.NewStore(podman, credentials.StoreOptions{}); err == nil {
				stores = append(stores, s)
			}
		}
	}
	if len(stores) == 0 {
		return nil
	}
	return credentials.NewStoreWithFallbacks(stores[0], stores[1:]...)
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
	r.PlainHTTP = sourceref.IsLoopback(host)
	return r, nil
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

// MovingTag is the tag that always names the newest release for t.
func MovingTag(t Target) string { return t.Codename + "_" + t.Arch }

// LatestAll resolves each request's moving tag, 8 at a time.
func (o *OCI) LatestAll(ctx context.Context, reqs []Request, t Target) map[string]Result {
	return lookupAll(reqs, 8, func(q Request) (*Release, error) { return o.latest(ctx, q, t, false) })
}

// Cached answers from the manifest last resolved.
func (o *OCI) Cached(req Request, t Target) (*Release, error) {
	return o.latest(context.Background(), req, t, true)
}

// OCIRepository is the repository of image under an oci:// ref: ref
// itself when its last component is the image name, else ref/IMAGE.
func OCIRepository(ref sourceref.Ref, image string) sourceref.Ref {
	image = strings.ToLower(image)
	if ref.Path == image || strings.HasSuffix(ref.Path, "/"+image) {
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
	tag := MovingTag(t)
	cacheFile := ""
	if o.cacheDir != "" {
		cacheFile = filepath.Join(o.cacheDir, "oci", keyOf(ref.URL+":"+tag)+".json")
	}
	var body []byte
	if offline {
		if cacheFile == "" {
			return nil, fmt.Errorf("extension %s: %w", req.Name, ErrNotCached)
		}
		if body, err = readFileCapped(cacheFile, maxIndex); err != nil {
			return nil, fmt.Errorf("extension %s: %w", req.Name, ErrNotCached)
		}
	} else {
		repo, err := o.repo(ref)
		if err != nil {
			return nil, fmt.Errorf("extension %s: %w", req.Name, err)
		}
		desc, rc, err := repo.FetchReference(ctx, tag)
		if err != nil {
			return nil, fmt.Errorf("extension %s: resolving %s:%s: %w", req.Name, ref.URL, tag, ociError(err))
		}
		body, err = readVerified(rc, desc, maxIndex)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("extension %s: reading the manifest of %s:%s: %w", req.Name, ref.URL, tag, err)
		}
		if cacheFile != "" {
			_ = writeFileAtomic(cacheFile, body)
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("extension %s: decoding the manifest of %s:%s: %w", req.Name, ref.URL, tag, err)
	}
	if m.ArtifactType != OCIArtifactType {
		return nil, fmt.Errorf("extension %s: %s:%s is not a sysext artifact (artifactType %q)", req.Name, ref.URL, tag, m.ArtifactType)
	}
	c := Candidate{Tag: m.Annotations[OCITagAnnotation]}
	if t, err := time.Parse(time.RFC3339, m.Annotations[ocispec.AnnotationCreated]); err == nil {
		c.Published = t
	}
	if c.Tag == "" {
		c.Tag = tag
	}
	for _, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		if !safeComponent(name) || l.Digest.Validate() != nil {
			continue
		}
		c.Assets = append(c.Assets, Asset{Name: name, URL: ref.URL + "@" + l.Digest.String(), Size: l.Size, Digest: l.Digest.String()})
	}
	if !c.Usable(req, t) {
		p := t.Prefix(req.ImageName())
		return nil, fmt.Errorf("extension %s: %s:%s has no %s.squashfs and %s.manifest layers: %w", req.Name, ref.URL, tag, p, p, ErrNoAsset)
	}
	base := Release{Repo: ref.URL, Origin: req.URL, Kind: sourceref.KindOCI}
	return Resolve(ctx, req, t, &c, base, func(ctx context.Context, a Asset) ([]byte, error) {
		if offline {
			if b, ok := o.small.get(a); ok {
				return b, nil
			}
			return nil, fmt.Errorf("asset %s: %w", a.Name, ErrNotCached)
		}
		return o.Fetch(ctx, a)
	})
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

// ociError turns registry answers into the errors callers branch on.
func ociError(err error) error {
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case er.StatusCode == http.StatusTooManyRequests:
			return &RateLimitError{Reset: time.Now().Add(time.Minute), Err: err}
		case er.StatusCode >= 500:
			return &NetworkError{Err: err}
		case er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w (log in with docker login or podman login)", err)
		}
	}
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return Classify(err)
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
		return nil, ociError(err)
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

// PushRelease copies rel's image and .manifest for t, through src (which
// verifies them), to the OCI repository of image under url as one
// artifact, tagged TAG_CODENAME_ARCH and CODENAME_ARCH (sysextctl mirror
// --to oci://...).
func (o *OCI) PushRelease(ctx context.Context, url, image string, rel *Release, t Target, src Source, tmpDir string) error {
	ref, err := sourceref.Parse(url)
	if err != nil || ref.Kind != sourceref.KindOCI {
		return fmt.Errorf("pushing to %q: not an oci:// URL", url)
	}
	ref = OCIRepository(ref, image)
	repo, err := o.repo(ref)
	if err != nil {
		return err
	}
	var layers []ocispec.Descriptor
	type layer struct {
		a         Asset
		mediaType string
	}
	push := []layer{{rel.Image, OCIImageMediaType}, {rel.Manifest, OCIManifestMediaType}}
	// The signed checksum list and its signatures travel with the image,
	// so that a registry is as verifiable as the release (internal/trust).
	for _, n := range []string{"SHA256SUMS", "SHA256SUMS.minisig", "SHA256SUMS.gpg"} {
		if a, ok := rel.Assets[n]; ok {
			push = append(push, layer{a, OCISignatureMediaType})
		}
	}
	for _, l := range push {
		d, err := src.Download(ctx, l.a, tmpDir)
		if err != nil {
			return fmt.Errorf("pushing %s: %w", l.a.Name, err)
		}
		desc := ocispec.Descriptor{MediaType: l.mediaType, Digest: digest.Digest(d.SHA256), Size: d.Size,
			Annotations: map[string]string{ocispec.AnnotationTitle: l.a.Name}}
		err = pushFile(ctx, repo, desc, d.Path)
		os.Remove(d.Path)
		if err != nil {
			return fmt.Errorf("pushing %s to %s: %w", l.a.Name, ref.URL, ociError(err))
		}
		layers = append(layers, desc)
	}
	mdesc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, OCIArtifactType, oras.PackManifestOptions{
		Layers:              layers,
		ManifestAnnotations: map[string]string{OCITagAnnotation: rel.Tag, ocispec.AnnotationCreated: rel.PublishedOr(time.Now()).UTC().Format(time.RFC3339)},
	})
	if err != nil {
		return fmt.Errorf("pushing the manifest to %s: %w", ref.URL, ociError(err))
	}
	for _, tag := range []string{OCITag(rel.Tag, t), MovingTag(t)} {
		if err := repo.Tag(ctx, mdesc, tag); err != nil {
			return fmt.Errorf("tagging %s:%s: %w", ref.URL, tag, ociError(err))
		}
	}
	return nil
}

func pushFile(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, path string) error {
	if ok, err := repo.Exists(ctx, desc); err == nil && ok {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return repo.Push(ctx, desc, f)
}
