// Package source finds and downloads extension releases from wherever they
// are published: GitHub (and GitHub Enterprise), a static mirror over
// https:// or file://, an OCI registry, or a local image file.
//
// Parse turns a URL into a Ref without touching the network, so that
// manifests can be checked without importing any client. A Provider
// implements one kind of source; a Router (router.go) is the one Source the
// engine talks to: it picks the provider by the Ref's kind and falls through
// to the configured mirrors when the primary is unreachable or rate limited.
//
// Errors callers branch on: *RateLimitError, IsNetwork, *DigestMismatchError,
// *SizeMismatchError, ErrTooLarge, ErrNoAsset, ErrNotCached, ErrUnverified.
package source

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Target is the host an extension is chosen for.
type Target struct {
	Codename string // e.g. trixie
	Arch     string // Debian name, e.g. amd64
}

// Prefix is the asset name prefix of image for t: IMAGE_CODENAME_ARCH.
func (t Target) Prefix(image string) string {
	return image + "_" + t.Codename + "_" + t.Arch
}

// Request names one extension to look up.
type Request struct {
	Name  string // manifest key, e.g. "hello"
	URL   string // where it is published, e.g. https://github.com/OWNER/REPO
	Image string // image name and asset prefix, e.g. "sysext-hello"
	// Prerelease lets a release marked prerelease be chosen.
	Prerelease bool
	// Mirrors are tried in order after URL (see Router.MirrorsFirst).
	Mirrors []string
	// Version, when set, asks for the release with this PACKAGE_VERSION
	// rather than the newest (a pin). Sources that list every release by
	// its version (OCI registries) honour it; others offer their newest.
	Version string
	// Skip lists release tags the caller refuses (phased away for this
	// appliance, withdrawn): every source answers its newest usable
	// release whose tag is not listed, from its cache too. When every
	// usable release is listed, the error is ErrAllSkipped (also
	// ErrNoAsset).
	Skip []string
}

// Skips reports whether r refuses the release tagged tag.
func (r Request) Skips(tag string) bool {
	return slices.Contains(r.Skip, tag)
}

// ImageName is the asset prefix of r: Image, else sysext-NAME.
func (r Request) ImageName() string {
	if r.Image != "" {
		return r.Image
	}
	if strings.HasPrefix(r.Name, "sysext-") {
		return r.Name
	}
	return "sysext-" + r.Name
}

// Asset is one file of a release.
type Asset struct {
	ID         int64  `json:"id,omitempty"`
	Name       string `json:"name"`
	URL        string `json:"url,omitempty"`         // where the bytes are (GitHub: API URL answering a redirect)
	BrowserURL string `json:"browser_url,omitempty"` // GitHub browser_download_url; costs no API quota
	Size       int64  `json:"size"`
	// Digest is "sha256:<hex>" or "sha512:<hex>", "" when none was published.
	Digest string `json:"digest,omitempty"`
	// Unverified is true when no digest was published: the bytes can only
	// be checked against the size.
	Unverified bool `json:"unverified,omitempty"`
	// Origin is the URL of the source the asset belongs to (the Ref's
	// URL); the Router dispatches downloads by it.
	Origin string `json:"origin,omitempty"`
}

// Release is the newest usable release of an extension for a Target.
type Release struct {
	Name      string            // Request.Name
	Repo      string            // "OWNER/REPO" on GitHub, else the source URL
	Tag       string            // release tag ("local" for a local image)
	Version   string            // PACKAGE_VERSION from the .manifest asset
	BuildTime string            // BUILD_TIME from the .manifest asset, may be ""
	Fields    map[string]string // every KEY=VALUE of the .manifest asset
	Image     Asset             // IMAGE_CODENAME_ARCH.squashfs (or .raw)
	Manifest  Asset             // IMAGE_CODENAME_ARCH.manifest
	// Assets holds every asset of the release by name (SHA256SUMS,
	// SHA256SUMS.minisig, ... for signature checks).
	Assets map[string]Asset
	// Origin is the source the release came from: its URL, or "local".
	Origin string
	// Kind is the kind of source it came from.
	Kind sourceref.Kind
	// Published is when the release was published (zero when the source
	// does not say); Prerelease is true for a release marked so. sysextctl
	// mirror copies both into the mirror it writes, so that the mirror
	// orders releases as their source did.
	Published  time.Time
	Prerelease bool
}

// PublishedOr is when r was published, else now: a mirror orders
// releases by it.
func (r *Release) PublishedOr(now time.Time) time.Time {
	if r.Published.IsZero() {
		return now
	}
	return r.Published
}

// Downloaded is a verified file in the caller's directory. The caller
// renames it into place or removes it.
type Downloaded struct {
	Path   string
	SHA256 string // "sha256:<hex>" of the bytes, computed while streaming
	Size   int64
	// Unverified is true when no digest was published to compare with.
	Unverified bool
}

// Result is one answer of LatestAll: exactly one of Release and Err is set.
type Result struct {
	Release *Release
	Err     error
}

// Source is what the engine uses: look up releases, download and fetch
// their assets.
type Source interface {
	// LatestAll looks every request up and answers one Result per
	// Request.Name.
	LatestAll(ctx context.Context, reqs []Request, t Target) map[string]Result
	// Cached answers what LatestAll answered last time, without network.
	// ErrNotCached when nothing is known.
	Cached(req Request, t Target) (*Release, error)
	// Download streams a into a new file in dir, verified against the
	// published size and digest. On error nothing is left in dir.
	Download(ctx context.Context, a Asset, dir string) (*Downloaded, error)
	// Fetch returns the verified bytes of a small asset (at most
	// MaxSmallAsset bytes): SHA256SUMS, a signature, a .manifest.
	Fetch(ctx context.Context, a Asset) ([]byte, error)
}

// Provider is one kind of source. Requests passed to it carry its own URL
// in Request.URL.
type Provider = Source

// MaxSmallAsset caps what Fetch reads.
const MaxSmallAsset = 1 << 20
