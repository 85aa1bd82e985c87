package source

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/sourceref"
)

// PushRelease copies rel's image and .manifest for t, through src (which
// verifies them), to the OCI repository of image under url as one
// artifact, tagged TAG_CODENAME_ARCH, and CODENAME_ARCH unless that
// already names a newer release (sysextctl mirror --to oci://...). A
// layer the registry already holds is not downloaded again.
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
	// release.json carries the rollout; a mirror that dropped it would
	// undo a vendor's phase or withdrawal for everyone behind it.
	var annotations map[string]string
	if a, ok := rel.Assets["release.json"]; ok {
		push = append(push, layer{a, OCIReleaseMediaType})
		b, err := src.Fetch(ctx, a)
		if err != nil {
			return fmt.Errorf("pushing release.json: %w", err)
		}
		annotations = rolloutAnnotations(b)
	}
	var layers []ocispec.Descriptor
	for _, l := range push {
		desc, err := o.pushLayer(ctx, repo, ref, l.a, l.mediaType, src, tmpDir)
		if err != nil {
			return err
		}
		layers = append(layers, desc)
	}
	return o.tagRelease(ctx, repo, ref, rel, t, layers, annotations)
}

// PushFiles pushes an image and its .manifest from local files as the
// release tag of t (sysext-build publish --to oci://): the same artifact
// and tags as PushRelease.
func (o *OCI) PushFiles(ctx context.Context, url, image, tag string, t Target, files []string) error {
	ref, err := sourceref.Parse(url)
	if err != nil || ref.Kind != sourceref.KindOCI {
		return fmt.Errorf("pushing to %q: not an oci:// URL", url)
	}
	ref = OCIRepository(ref, image)
	repo, err := o.repo(ref)
	if err != nil {
		return err
	}
	rel := &Release{Tag: tag, Assets: map[string]Asset{}}
	var layers []ocispec.Descriptor
	var annotations map[string]string
	for _, f := range files {
		d, err := fileDigest(f)
		if err != nil {
			return fmt.Errorf("pushing %s: %w", f, err)
		}
		mt := OCISignatureMediaType
		switch d.Name {
		case "release.json":
			mt = OCIReleaseMediaType
			b, err := readFileCapped(f, MaxSmallAsset)
			if err != nil {
				return err
			}
			annotations = rolloutAnnotations(b)
		case t.Prefix(image) + ".squashfs":
			mt = OCIImageMediaType
		case t.Prefix(image) + ".manifest":
			mt = OCIManifestMediaType
			b, err := readFileCapped(f, MaxSmallAsset)
			if err != nil {
				return err
			}
			fields := osrelease.Parse(b)
			rel.Version, rel.BuildTime = fields["PACKAGE_VERSION"], fields["BUILD_TIME"]
		}
		desc := ocispec.Descriptor{MediaType: mt, Digest: digest.Digest(d.Digest), Size: d.Size,
			Annotations: map[string]string{ocispec.AnnotationTitle: d.Name}}
		if err := pushFile(ctx, repo, desc, f); err != nil {
			return fmt.Errorf("pushing %s to %s: %w", d.Name, ref.URL, o.err(ref, err))
		}
		layers = append(layers, desc)
	}
	return o.tagRelease(ctx, repo, ref, rel, t, layers, annotations)
}

// pushLayer puts asset a into repo: nothing when the registry already has
// its digest (asked first, by HEAD), else a verified download from src.
func (o *OCI) pushLayer(ctx context.Context, repo *remote.Repository, ref sourceref.Ref, a Asset, mediaType string, src Source, tmpDir string) (ocispec.Descriptor, error) {
	if d := digest.Digest(a.Digest); a.Size > 0 && d.Validate() == nil && d.Algorithm() == digest.SHA256 {
		desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: a.Size, Annotations: map[string]string{ocispec.AnnotationTitle: a.Name}}
		ok, err := repo.Blobs().Exists(ctx, desc)
		if err != nil {
			return desc, fmt.Errorf("asking %s for %s: %w", ref.URL, a.Name, o.err(ref, err))
		}
		if ok {
			return desc, nil
		}
	}
	d, err := src.Download(ctx, a, tmpDir)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing %s: %w", a.Name, err)
	}
	defer os.Remove(d.Path)
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.Digest(d.SHA256), Size: d.Size,
		Annotations: map[string]string{ocispec.AnnotationTitle: a.Name}}
	if err := pushFile(ctx, repo, desc, d.Path); err != nil {
		return desc, fmt.Errorf("pushing %s to %s: %w", a.Name, ref.URL, o.err(ref, err))
	}
	return desc, nil
}

// tagRelease packs the artifact manifest and tags it TAG_CODENAME_ARCH,
// then CODENAME_ARCH unless that names a newer release already.
func (o *OCI) tagRelease(ctx context.Context, repo *remote.Repository, ref sourceref.Ref, rel *Release, t Target, layers []ocispec.Descriptor, extra map[string]string) error {
	annotations := map[string]string{OCITagAnnotation: rel.Tag, ocispec.AnnotationCreated: rel.PublishedOr(time.Now()).UTC().Format(time.RFC3339)}
	maps.Copy(annotations, extra)
	mdesc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, OCIArtifactType, oras.PackManifestOptions{
		Layers:              layers,
		ManifestAnnotations: annotations,
	})
	if err != nil {
		return fmt.Errorf("pushing the manifest to %s: %w", ref.URL, o.err(ref, err))
	}
	tag := OCITag(rel.Tag, t)
	if err := repo.Tag(ctx, mdesc, tag); err != nil {
		return fmt.Errorf("tagging %s:%s: %w", ref.URL, tag, o.err(ref, err))
	}
	moving := MovingTag(t)
	if cur := o.movingRelease(ctx, repo, ref, t); cur != nil && newer(cur, rel) {
		return nil
	}
	if err := repo.Tag(ctx, mdesc, moving); err != nil {
		return fmt.Errorf("tagging %s:%s: %w", ref.URL, moving, o.err(ref, err))
	}
	return nil
}

// movingRelease is the version and build time CODENAME_ARCH names now,
// nil when it names nothing readable.
func (o *OCI) movingRelease(ctx context.Context, repo *remote.Repository, ref sourceref.Ref, t Target) *Release {
	body, err := o.manifest(ctx, repo, ref, MovingTag(t))
	if err != nil {
		return nil
	}
	var m ocispec.Manifest
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	for _, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		if len(name) < len(".manifest") || name[len(name)-len(".manifest"):] != ".manifest" || l.Size > MaxSmallAsset {
			continue
		}
		b, err := o.Fetch(ctx, Asset{Name: name, URL: ref.URL + "@" + l.Digest.String(), Size: l.Size, Digest: l.Digest.String()})
		if err != nil {
			return nil
		}
		f := osrelease.Parse(b)
		return &Release{Tag: m.Annotations[OCITagAnnotation], Version: f["PACKAGE_VERSION"], BuildTime: f["BUILD_TIME"]}
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
	return repo.Push(ctx, desc, io.Reader(f))
}

// fileDigest is a local file's name, SHA-256 digest and size.
func fileDigest(path string) (Asset, error) {
	f, err := os.Open(path)
	if err != nil {
		return Asset{}, err
	}
	defer f.Close()
	h := digest.SHA256.Digester()
	n, err := io.Copy(h.Hash(), f)
	if err != nil {
		return Asset{}, err
	}
	return Asset{Name: filepath.Base(path), Digest: h.Digest().String(), Size: n}, nil
}

// rolloutAnnotations repeats release.json's rollout on the artifact
// (OCIPhasedAnnotation, OCIWithdrawnAnnotation), for people and registry
// tools only. A release.json that does not parse adds none.
func rolloutAnnotations(releaseJSON []byte) map[string]string {
	var r struct {
		Phased    *int `json:"phased_percentage"`
		Withdrawn bool `json:"withdrawn"`
	}
	if json.Unmarshal(releaseJSON, &r) != nil {
		return nil
	}
	out := map[string]string{}
	if r.Phased != nil {
		out[OCIPhasedAnnotation] = strconv.Itoa(*r.Phased)
	}
	if r.Withdrawn {
		out[OCIWithdrawnAnnotation] = "true"
	}
	return out
}
