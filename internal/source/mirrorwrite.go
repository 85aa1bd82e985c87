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

// mirrorWriter is where writeRelease puts a static mirror (docs/sources.md):
// a directory (dirWriter) or a web server accepting PUT (Uploader). Names
// passed to it are already checked with safeComponent.
type mirrorWriter interface {
	// indexLoc names BASE/IMAGE/index.json in messages (a path or a
	// redacted URL).
	indexLoc(image string) string
	// readIndex returns BASE/IMAGE/index.json, nil when there is none yet.
	readIndex(ctx context.Context, image string) ([]byte, error)
	// has reports whether BASE/IMAGE/TAG/NAME is there with a's size.
	has(ctx context.Context, image, tag string, a IndexAsset) (bool, error)
	// stage is the directory downloads go to before putAsset.
	stage(image, tag string) (string, error)
	// putAsset moves the verified download d to BASE/IMAGE/TAG/NAME; the
	// caller removes d.Path afterwards whatever happened.
	putAsset(ctx context.Context, image, tag, name string, d *Downloaded) error
	// putIndex replaces BASE/IMAGE/index.json.
	putIndex(ctx context.Context, image string, b []byte) error
}

// AddToMirror copies every asset of rel, through src (which verifies each
// against its published digest), into the static mirror directory dir as
// DIR/IMAGE/TAG/NAME, and records the release in DIR/IMAGE/index.json,
// replacing an entry with the same tag. Assets already present with the
// recorded size and digest are not downloaded again. The index is
// replaced atomically, after the assets are in place, so a reader never
// sees an index naming a missing file.
func AddToMirror(ctx context.Context, dir, image string, rel *Release, src Source, published time.Time, prerelease bool) error {
	return writeRelease(ctx, dirWriter(dir), image, rel, src, published, prerelease)
}

// writeRelease is AddToMirror for any mirrorWriter: read the index, put
// every asset it does not already list with the same size and digest,
// and put the merged index last. On any error the index is not written.
func writeRelease(ctx context.Context, w mirrorWriter, image string, rel *Release, src Source, published time.Time, prerelease bool) error {
	if !safeComponent(image) || !safeComponent(rel.Tag) {
		return fmt.Errorf("mirroring %s %s: image or tag not usable as a file name", image, rel.Tag)
	}
	ix := &Index{Format: IndexFormat, Image: image}
	b, err := w.readIndex(ctx, image)
	if err != nil {
		return fmt.Errorf("mirroring %s: %w", image, err)
	}
	if b != nil {
		if ix, err = ParseIndex(b, image); err != nil {
			return fmt.Errorf("mirroring %s: existing %s: %w", image, w.indexLoc(image), err)
		}
	}
	old := map[string]IndexAsset{}
	for _, r := range ix.Releases {
		if r.Tag == rel.Tag {
			for _, a := range r.Assets {
				old[a.Name] = a
			}
		}
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
		if o, ok := old[n]; ok && (a.Digest == "" || strings.EqualFold(a.Digest, "sha256:"+o.SHA256)) {
			there, err := w.has(ctx, image, rel.Tag, o)
			if err != nil {
				return fmt.Errorf("mirroring %s %s: %w", image, rel.Tag, err)
			}
			if there {
				entry.Assets = append(entry.Assets, o)
				continue
			}
		}
		dir, err := w.stage(image, rel.Tag)
		if err != nil {
			return fmt.Errorf("mirroring %s: %w", image, err)
		}
		d, err := src.Download(ctx, a, dir)
		if err != nil {
			return fmt.Errorf("mirroring %s %s: %w", image, rel.Tag, err)
		}
		err = w.putAsset(ctx, image, rel.Tag, n, d)
		os.Remove(d.Path)
		if err != nil {
			return fmt.Errorf("mirroring %s %s: %w", image, rel.Tag, err)
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
	if b, err = json.MarshalIndent(ix, "", "  "); err != nil {
		return fmt.Errorf("mirroring %s: %w", image, err)
	}
	if err := w.putIndex(ctx, image, append(b, '\n')); err != nil {
		return fmt.Errorf("mirroring %s: writing %s: %w", image, w.indexLoc(image), err)
	}
	return nil
}

// dirWriter writes a static mirror into a directory.
type dirWriter string

func (d dirWriter) indexLoc(image string) string {
	return filepath.Join(string(d), image, "index.json")
}

func (d dirWriter) readIndex(_ context.Context, image string) ([]byte, error) {
	b, err := os.ReadFile(d.indexLoc(image))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (d dirWriter) has(_ context.Context, image, tag string, a IndexAsset) (bool, error) {
	fi, err := os.Stat(filepath.Join(string(d), image, tag, a.Name))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == a.Size, nil
}

func (d dirWriter) stage(image, tag string) (string, error) {
	dir := filepath.Join(string(d), image, tag)
	return dir, os.MkdirAll(dir, 0o755)
}

func (d dirWriter) putAsset(_ context.Context, image, tag, name string, dl *Downloaded) error {
	if err := os.Chmod(dl.Path, 0o644); err != nil {
		return err
	}
	return os.Rename(dl.Path, filepath.Join(string(d), image, tag, name))
}

func (d dirWriter) putIndex(_ context.Context, image string, b []byte) error {
	return writeFileAtomic(d.indexLoc(image), b)
}
