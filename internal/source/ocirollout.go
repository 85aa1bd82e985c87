package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// OCIRelease is one release in an OCI repository: every artifact tagged
// TAG_CODENAME_ARCH, one per build. sysext-build phase and withdraw read
// and rewrite its release-wide files (release.json, SHA256SUMS and the
// signatures), which every artifact of the release carries alike.
type OCIRelease struct {
	o         *OCI
	ref       sourceref.Ref
	repo      *remote.Repository
	tag       string
	artifacts []ociArtifact
}

type ociArtifact struct {
	tag  string // TAG_CODENAME_ARCH
	desc ocispec.Descriptor
	man  ocispec.Manifest
}

// OpenRelease finds release tag in the repository at url (the image's
// own repository, e.g. oci://registry/fleet/sysext-hello).
func (o *OCI) OpenRelease(ctx context.Context, url, tag string) (*OCIRelease, error) {
	ref, err := sourceref.Parse(url)
	if err != nil || ref.Kind != sourceref.KindOCI || ref.Tag != "" {
		return nil, fmt.Errorf("%q: want oci://REGISTRY/REPOSITORY, the repository of the image", url)
	}
	repo, err := o.repo(ref)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimLeft(tagUnsafe.ReplaceAllString(tag, "-"), ".-") + "_"
	var tags []string
	err = repo.Tags(ctx, "", func(page []string) error {
		for _, t := range page {
			// TAG_CODENAME_ARCH: exactly codename and arch after the tag.
			if rest, ok := strings.CutPrefix(t, prefix); ok && strings.Count(rest, "_") == 1 {
				tags = append(tags, t)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", ref.URL, o.err(ref, err))
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("%s has no artifact of release %s (no tag %s*): %w", ref.URL, tag, prefix, ErrNotFound)
	}
	sort.Strings(tags)
	r := &OCIRelease{o: o, ref: ref, repo: repo, tag: tag}
	for _, t := range tags {
		desc, rc, err := repo.FetchReference(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("resolving %s:%s: %w", ref.URL, t, o.err(ref, err))
		}
		body, err := readVerified(rc, desc, maxIndex)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the manifest of %s:%s: %w", ref.URL, t, err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("%s:%s is not an OCI image manifest: %w", ref.URL, t, err)
		}
		r.artifacts = append(r.artifacts, ociArtifact{tag: t, desc: desc, man: m})
	}
	return r, nil
}

// Tags are the artifacts' tags, TAG_CODENAME_ARCH.
func (r *OCIRelease) Tags() []string {
	out := make([]string, len(r.artifacts))
	for i, a := range r.artifacts {
		out[i] = a.tag
	}
	return out
}

// Files reads the named small files of the release from its first
// artifact, verified by digest; a name it does not carry is left out.
func (r *OCIRelease) Files(ctx context.Context, names ...string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, l := range r.artifacts[0].man.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		for _, n := range names {
			if n != name {
				continue
			}
			b, err := r.o.Fetch(ctx, Asset{Name: name, URL: r.ref.URL + "@" + l.Digest.String(), Size: l.Size, Digest: l.Digest.String()})
			if err != nil {
				return nil, fmt.Errorf("reading %s of %s:%s: %w", name, r.ref.URL, r.artifacts[0].tag, err)
			}
			out[name] = b
		}
	}
	return out, nil
}

// Replace puts files into every artifact of the release: a layer with the
// same title gets the new content, a missing one is added (a signature
// made for the first time), and the rollout annotations follow
// release.json. Each artifact is a new manifest under its tag; the moving
// tag CODENAME_ARCH follows when it named the old one.
func (r *OCIRelease) Replace(ctx context.Context, files map[string][]byte) error {
	blobs := map[string]ocispec.Descriptor{}
	for name, b := range files {
		mt := OCISignatureMediaType
		if name == "release.json" {
			mt = OCIReleaseMediaType
		}
		desc := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b)),
			Annotations: map[string]string{ocispec.AnnotationTitle: name}}
		if ok, err := r.repo.Exists(ctx, desc); err != nil || !ok {
			if err := r.repo.Push(ctx, desc, bytes.NewReader(b)); err != nil {
				return fmt.Errorf("pushing %s to %s: %w", name, r.ref.URL, r.o.err(r.ref, err))
			}
		}
		blobs[name] = desc
	}
	for _, a := range r.artifacts {
		layers := make([]ocispec.Descriptor, 0, len(a.man.Layers)+len(files))
		done := map[string]bool{}
		for _, l := range a.man.Layers {
			name := l.Annotations[ocispec.AnnotationTitle]
			if d, ok := blobs[name]; ok {
				l = d
				done[name] = true
			}
			layers = append(layers, l)
		}
		names := make([]string, 0, len(blobs))
		for n := range blobs {
			if !done[n] {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			layers = append(layers, blobs[n])
		}
		annotations := maps.Clone(a.man.Annotations)
		if annotations == nil {
			annotations = map[string]string{}
		}
		if rj, ok := files["release.json"]; ok {
			delete(annotations, OCIPhasedAnnotation)
			delete(annotations, OCIWithdrawnAnnotation)
			maps.Copy(annotations, rolloutAnnotations(rj))
		}
		artifactType := a.man.ArtifactType
		if artifactType == "" {
			artifactType = OCIArtifactType
		}
		mdesc, err := oras.PackManifest(ctx, r.repo, oras.PackManifestVersion1_1, artifactType, oras.PackManifestOptions{
			Layers: layers, ManifestAnnotations: annotations,
		})
		if err != nil {
			return fmt.Errorf("pushing the manifest of %s:%s: %w", r.ref.URL, a.tag, r.o.err(r.ref, err))
		}
		if err := r.repo.Tag(ctx, mdesc, a.tag); err != nil {
			return fmt.Errorf("tagging %s:%s: %w", r.ref.URL, a.tag, r.o.err(r.ref, err))
		}
		// The moving tag, CODENAME_ARCH, keeps naming this release when it did.
		moving := movingOf(a.tag)
		if cur, err := r.repo.Resolve(ctx, moving); err == nil && cur.Digest == a.desc.Digest {
			if err := r.repo.Tag(ctx, mdesc, moving); err != nil {
				return fmt.Errorf("tagging %s:%s: %w", r.ref.URL, moving, r.o.err(r.ref, err))
			}
		}
	}
	return nil
}

// movingOf is the moving tag CODENAME_ARCH of an artifact tag
// TAG_CODENAME_ARCH (OpenRelease took only tags of that shape).
func movingOf(tag string) string {
	i := strings.LastIndex(tag, "_")
	return tag[strings.LastIndex(tag[:i], "_")+1:]
}
