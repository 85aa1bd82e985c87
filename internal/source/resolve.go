package source

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spamtagger/sysextd/internal/osrelease"
)

// Candidate is a release as a source lists it, before its assets for a
// host are picked.
type Candidate struct {
	Tag        string
	Draft      bool
	Prerelease bool
	// Published is when the release was published, zero when unknown.
	Published time.Time
	Assets    []Asset
}

// Has reports whether c has an asset named name.
func (c *Candidate) Has(name string) bool {
	for _, a := range c.Assets {
		if a.Name == name {
			return true
		}
	}
	return false
}

// Usable reports whether c may be chosen for req on t: not a draft, not a
// prerelease unless req allows it, and with both the image and its
// .manifest for t. It does not look at req.Skip (Pick does).
func (c *Candidate) Usable(req Request, t Target) bool {
	if c.Draft || (c.Prerelease && !req.Prerelease) {
		return false
	}
	p := t.Prefix(req.ImageName())
	return c.Has(p+".squashfs") && c.Has(p+".manifest")
}

// Pick returns the first usable candidate of cands (newest first) whose
// tag req does not skip, or an error wrapping ErrNoAsset that names the
// newest one and what it lacks (ErrAllSkipped when usable ones were
// skipped).
func Pick(cands []Candidate, req Request, t Target, where string) (*Candidate, error) {
	var skipped []string
	for i := range cands {
		if !cands[i].Usable(req, t) {
			continue
		}
		if req.Skips(cands[i].Tag) {
			skipped = append(skipped, cands[i].Tag)
			continue
		}
		return &cands[i], nil
	}
	if len(skipped) > 0 {
		return nil, skippedError(req, where, skipped)
	}
	p := t.Prefix(req.ImageName())
	for _, c := range cands {
		if c.Draft || (c.Prerelease && !req.Prerelease) {
			continue
		}
		return nil, fmt.Errorf("extension %s: no release of %s has %s.squashfs and %s.manifest (newest: %s): %w",
			req.Name, where, p, p, c.Tag, ErrNoAsset)
	}
	hint := ""
	if !req.Prerelease {
		hint = " (prereleases are skipped unless prerelease = true)"
	}
	return nil, fmt.Errorf("extension %s: %s has no published release%s: %w", req.Name, where, hint, ErrNoAsset)
}

// SmallFunc returns the verified bytes of a small asset.
type SmallFunc func(ctx context.Context, a Asset) ([]byte, error)

// Resolve makes the Release of c for req on t: the image and .manifest
// assets and the .manifest's fields. It fetches the .manifest only; the
// release.json cross-check (CrossCheck) waits until the release is about
// to be installed, so that a lookup costs one small download per changed
// release.
func Resolve(ctx context.Context, req Request, t Target, c *Candidate, base Release, small SmallFunc) (*Release, error) {
	p := t.Prefix(req.ImageName())
	out := base
	out.Name = req.Name
	out.Tag = c.Tag
	out.Published = c.Published
	out.Prerelease = c.Prerelease
	out.Assets = make(map[string]Asset, len(c.Assets))
	for _, a := range c.Assets {
		a.Unverified = a.Digest == ""
		a.Origin = base.Origin
		out.Assets[a.Name] = a
	}
	var ok1, ok2 bool
	out.Image, ok1 = out.Assets[p+".squashfs"]
	out.Manifest, ok2 = out.Assets[p+".manifest"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("extension %s: release %s of %s has no %s.squashfs or %s.manifest: %w", req.Name, c.Tag, out.Repo, p, p, ErrNoAsset)
	}
	manifest, err := small(ctx, out.Manifest)
	if err != nil {
		return nil, fmt.Errorf("extension %s: release %s: %w", req.Name, c.Tag, err)
	}
	out.Fields = osrelease.Parse(manifest)
	out.Version = out.Fields["PACKAGE_VERSION"]
	out.BuildTime = out.Fields["BUILD_TIME"]
	if out.Version == "" {
		return nil, fmt.Errorf("extension %s: release %s: %s has no PACKAGE_VERSION", req.Name, c.Tag, out.Manifest.Name)
	}
	return &out, nil
}

// CrossCheck compares rel's .manifest with its release.json, when it has
// one: a well-formed release.json that names another package version for t
// is an error (the release is inconsistent); a malformed one is only a
// warning, returned, since older template copies published such files and
// the .manifest is what counts.
func CrossCheck(ctx context.Context, rel *Release, t Target, small SmallFunc) (warning string, err error) {
	a, ok := rel.Assets["release.json"]
	if !ok {
		return "", nil
	}
	b, err := small(ctx, a)
	if err != nil {
		return "", fmt.Errorf("extension %s: release %s: %w", rel.Name, rel.Tag, err)
	}
	var rj struct {
		PackageVersions map[string]string `json:"package_versions"`
	}
	if err := json.Unmarshal(b, &rj); err != nil {
		return fmt.Sprintf("release %s: ignoring malformed release.json: %v", rel.Tag, err), nil
	}
	key := t.Codename + "_" + t.Arch
	if v, ok := rj.PackageVersions[key]; ok && v != rel.Version {
		return "", fmt.Errorf("extension %s: release %s is inconsistent: release.json says package version %q for %s, %s says %q",
			rel.Name, rel.Tag, v, key, rel.Manifest.Name, rel.Version)
	}
	return "", nil
}
