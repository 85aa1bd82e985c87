package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/version"
)

// IndexFormat is the format version of a static mirror's index.json.
const IndexFormat = 1

// Index is a static mirror's BASE/IMAGE/index.json (docs/sources.md): the
// releases of one image, each with its assets' sizes and SHA-256 digests.
// The assets are at BASE/IMAGE/TAG/NAME.
type Index struct {
	Format   int            `json:"format"`
	Image    string         `json:"image"`
	Releases []IndexRelease `json:"releases"`
}

// IndexRelease is one release in an Index.
type IndexRelease struct {
	Tag         string       `json:"tag"`
	PublishedAt time.Time    `json:"published_at"`
	Prerelease  bool         `json:"prerelease,omitempty"`
	Assets      []IndexAsset `json:"assets"`
}

// IndexAsset is one file of an IndexRelease.
type IndexAsset struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// maxIndex caps an index.json.
const maxIndex = 4 << 20

// ParseIndex reads an index.json for image, checking every name (no path
// separators, no "..": they become path components), size and digest, and
// returns the releases newest first.
func ParseIndex(data []byte, image string) (*Index, error) {
	if len(data) > maxIndex {
		return nil, fmt.Errorf("index larger than %d bytes", maxIndex)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ix Index
	if err := dec.Decode(&ix); err != nil {
		return nil, fmt.Errorf("decoding index: %w", err)
	}
	if ix.Format != IndexFormat {
		return nil, fmt.Errorf("index format %d, want %d", ix.Format, IndexFormat)
	}
	if ix.Image != image {
		return nil, fmt.Errorf("index is for image %q, want %q", ix.Image, image)
	}
	tags := map[string]bool{}
	for i, r := range ix.Releases {
		if !safeComponent(r.Tag) {
			return nil, fmt.Errorf("release %d: invalid tag %q", i, r.Tag)
		}
		if tags[r.Tag] {
			return nil, fmt.Errorf("release %q listed twice", r.Tag)
		}
		tags[r.Tag] = true
		names := map[string]bool{}
		for _, a := range r.Assets {
			if !safeComponent(a.Name) {
				return nil, fmt.Errorf("release %q: invalid asset name %q", r.Tag, a.Name)
			}
			if names[a.Name] {
				return nil, fmt.Errorf("release %q: asset %q listed twice", r.Tag, a.Name)
			}
			names[a.Name] = true
			if a.Size < 0 {
				return nil, fmt.Errorf("release %q: asset %q: negative size", r.Tag, a.Name)
			}
			if _, _, err := splitDigest("sha256:" + a.SHA256); err != nil {
				return nil, fmt.Errorf("release %q: asset %q: %w", r.Tag, a.Name, err)
			}
		}
	}
	sort.SliceStable(ix.Releases, func(i, j int) bool { return newerRelease(ix.Releases[i], ix.Releases[j]) })
	return &ix, nil
}

// newerRelease orders an index newest first: by published_at, and among
// releases published in the same second (sysextctl mirror stamps the time
// it ran, to the second) by tag as a Debian version, a leading "v" dropped;
// tags that are no version come after those that are.
func newerRelease(a, b IndexRelease) bool {
	if !a.PublishedAt.Equal(b.PublishedAt) {
		return a.PublishedAt.After(b.PublishedAt)
	}
	va, vb := tagVersion(a.Tag), tagVersion(b.Tag)
	switch {
	case va == "" || vb == "":
		return va != "" && vb == ""
	default:
		c, err := version.Compare(va, vb)
		return err == nil && c > 0
	}
}

// tagVersion is the Debian version a release tag names ("v2.12.2-1" ->
// "2.12.2-1"), or "" when it names none.
func tagVersion(tag string) string {
	v := strings.TrimPrefix(tag, "v")
	if v == "" || v[0] < '0' || v[0] > '9' {
		return ""
	}
	if _, err := version.Compare(v, v); err != nil {
		return ""
	}
	return v
}

// safeComponent accepts a name usable as one path component and URL
// segment.
func safeComponent(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' || r == '+' || r == '~' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return !strings.HasPrefix(s, ".")
}

// Candidates turns the index into release candidates whose asset URLs are
// under base (BASE/IMAGE/TAG/NAME).
func (ix *Index) Candidates(base string) []Candidate {
	out := make([]Candidate, 0, len(ix.Releases))
	for _, r := range ix.Releases {
		c := Candidate{Tag: r.Tag, Prerelease: r.Prerelease, Published: r.PublishedAt}
		for _, a := range r.Assets {
			c.Assets = append(c.Assets, Asset{
				Name:   a.Name,
				URL:    strings.TrimSuffix(base, "/") + "/" + ix.Image + "/" + r.Tag + "/" + a.Name,
				Size:   a.Size,
				Digest: "sha256:" + strings.ToLower(a.SHA256),
			})
		}
		out = append(out, c)
	}
	return out
}
