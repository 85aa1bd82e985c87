package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// AddToMirror copies every asset of rel, through src (which verifies each
// against its published digest), into the static mirror directory dir as
// DIR/IMAGE/TAG/NAME, and records the release in DIR/IMAGE/index.json,
// replacing an entry with the same tag. Assets already present with the
// recorded size and digest are not downloaded again. The index is
// replaced atomically, after the assets are in place, so a reader never
// sees an index naming a missing file.
func AddToMirror(ctx context.Context, dir, image string, rel *Release, src Source, published time.Time, prerelease bool) error {
	if !safeComponent(image) || !safeComponent(rel.Tag) {
		return fmt.Errorf("mirroring %s %s: image or tag not usable as a file name", image, rel.Tag)
	}
	imgDir := filepath.Join(dir, image)
	ixPath := filepath.Join(imgDir, "index.json")
	ix := &Index{Format: IndexFormat, Image: image}
	if b, err := os.ReadFile(ixPath); err == nil {
		if ix, err = ParseIndex(b, image); err != nil {
			return fmt.Errorf("mirroring %s: existing %s: %w", image, ixPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mirroring %s: %w", image, err)
	}
	old := map[string]IndexAsset{}
	for _, r := range ix.Releases {
		if r.Tag == rel.Tag {
			for _, a := range r.Assets {
				old[a.Name] = a
			}
		}
	}
	relDir := filepath.Join(imgDir, rel.Tag)
	if err := os.MkdirAll(relDir, 0o755); err != nil {
		return fmt.Errorf("mirroring %s: %w", image, err)
	}
	names := make([]string, 0, len(rel.Assets))
	for n := range rel.Assets {
		if safeComponent(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	entry := IndexRelease{Tag: rel.Tag, PublishedAt: published.UTC().Truncate(time.Second), Prerelease: prerelease}
	for _, n := range names {
		a := rel.Assets[n]
		dst := filepath.Join(relDir, n)
		if o, ok := old[n]; ok && (a.Digest == "" || strings.EqualFold(a.Digest, "sha256:"+o.SHA256)) {
			if fi, err := os.Stat(dst); err == nil && fi.Size() == o.Size {
				entry.Assets = append(entry.Assets, o)
				continue
			}
		}
		d, err := src.Download(ctx, a, relDir)
		if err != nil {
			return fmt.Errorf("mirroring %s %s: %w", image, rel.Tag, err)
		}
		if err := os.Chmod(d.Path, 0o644); err != nil {
			os.Remove(d.Path)
			return fmt.Errorf("mirroring %s: %w", image, err)
		}
		if err := os.Rename(d.Path, dst); err != nil {
			os.Remove(d.Path)
			return fmt.Errorf("mirroring %s: %w", image, err)
		}
		entry.Assets = append(entry.Assets, IndexAsset{Name: n, Size: d.Size, SHA256: strings.TrimPrefix(d.SHA256, "sha256:")})
	}
	kept := ix.Releases[:0]
	for _, r := range ix.Releases {
		if r.Tag != rel.Tag {
			kept = append(kept, r)
		}
	}
	ix.Releases = append(kept, entry)
	sort.SliceStable(ix.Releases, func(i, j int) bool { return ix.Releases[i].PublishedAt.After(ix.Releases[j].PublishedAt) })
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return fmt.Errorf("mirroring %s: %w", image, err)
	}
	if err := writeFileAtomic(ixPath, append(b, '\n')); err != nil {
		return fmt.Errorf("mirroring %s: writing %s: %w", image, ixPath, err)
	}
	return nil
}
