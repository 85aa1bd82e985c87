package source

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/spamtagger/sysextd/internal/osrelease"
)

// Candidate is a release as a source lists it, before its assets for a
// host are picked.
type Candidate struct {
	Tag        string
	Draft      bool
	Prerelease bool
	Assets     []Asset
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
// .manifest for t.
func (c *Candidate) Usable(req Request, t Target) bool {
	if c.Draft || (c.Prerelease && !req.Prerelease) {
		return false
	}
	p := t.Prefix(req.ImageName())
	return c.Has(p+".squashfs") && c.Has(p+".manifest")
}

// Pick returns the first usable candidate of cands (newest first), or an
// error wrapping ErrNoAsset that names the newest one and what it lacks.
func Pick(cands []Candidate, req Request, t Target, where string) (*Candidate, error) {
	for i := range cands {
		if cands[i].Usable(req, t) {
			return &cands[i], nil
		}
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
// assets, the .manifest's fields, and the release.json cross-check. A
// malformed release.json is only a warning (older template copies
// published one); a well-formed one that disagrees is an error.
func Resolve(ctx context.Context, req Request, t Target, c *Candidate, base Release, small SmallFunc) (*Release, error) {
	p := t.Prefix(req.ImageName())
	out := base
	out.Name = req.Name
	out.Tag = c.Tag
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

	var manifest, relJSON []byte
	var mErr, rErr error
	var wg sync.WaitGroup
	wg.Go(func() { manifest, mErr = small(ctx, out.Manifest) })
	relAsset, hasRelJSON := out.Assets["release.json"]
	if hasRelJSON {
		wg.Go(func() { relJSON, rErr = small(ctx, relAsset) })
	}
	wg.Wait()
	if mErr != nil {
		return nil, fmt.Errorf("extension %s: release %s: %w", req.Name, c.Tag, mErr)
	}
	if rErr != nil {
		return nil, fmt.Errorf("extension %s: release %s: %w", req.Name, c.Tag, rErr)
	}

	out.Fields = osrelease.Parse(manifest)
	out.Version = out.Fields["PACKAGE_VERSION"]
	out.BuildTime = out.Fields["BUILD_TIME"]
	if out.Version == "" {
		return nil, fmt.Errorf("extension %s: release %s: %s has no PACKAGE_VERSION", req.Name, c.Tag, out.Manifest.Name)
	}
	if hasRelJSON {
		var rj struct {
			PackageVersions map[string]string `json:"package_versions"`
		}
		if err := json.Unmarshal(relJSON, &rj); err != nil {
			out.Warnings = append(out.Warnings, fmt.Sprintf("release %s: ignoring malformed release.json: %v", c.Tag, err))
		} else {
			key := t.Codename + "_" + t.Arch
			if v, ok := rj.PackageVersions[key]; ok && v != out.Version {
				return nil, fmt.Errorf("extension %s: release %s is inconsistent: release.json says package version %q for %s, %s says %q",
					req.Name, c.Tag, v, key, out.Manifest.Name, out.Version)
			}
		}
	}
	return &out, nil
}
