package engine

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spamtagger/sysextd/internal/fetch"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/match"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// Statuses of an extension, as list shows them.
const (
	StatusActive       = "active"
	StatusInactive     = "inactive"
	StatusBroken       = "broken"
	StatusNotInstalled = "not-installed"
)

// Item is one row of list. The JSON keys up to Conflicts are the stable
// contract of SPEC §10; the others are additions.
type Item struct {
	Name             string   `json:"name"`
	Image            string   `json:"image"`
	Status           string   `json:"status"`
	InstalledVersion string   `json:"installed_version"`
	AvailableVersion string   `json:"available_version"`
	Recommended      bool     `json:"recommended"`
	Reasons          []string `json:"reasons"`
	Update           string   `json:"update"`
	Conflicts        []string `json:"conflicts"`

	InstalledBy    string `json:"installed_by,omitempty"`
	Enabled        bool   `json:"enabled"`
	InManifest     bool   `json:"in_manifest"`
	RebootRequired bool   `json:"reboot_required,omitempty"`
	Problem        string `json:"problem,omitempty"`
	// Unverified: the available release's image has no published digest.
	Unverified bool `json:"unverified,omitempty"`
	// Source is where the available release was found (its URL, or
	// "local").
	Source string `json:"source,omitempty"`

	lookupErr error
}

// LookupError is why the available version is unknown, or nil.
func (it *Item) LookupError() error { return it.lookupErr }

// List describes every extension of the manifests plus anything installed
// that they no longer name. offline uses only cached release data; else
// every release is checked.
func (e *Engine) List(ctx context.Context, offline bool) ([]Item, error) {
	items, _, err := e.ListWith(ctx, ListOptions{Offline: offline, MaxAge: -1})
	return items, err
}

// ListOptions say how fresh list's release data must be.
type ListOptions struct {
	// Offline uses only cached release data.
	Offline bool
	// MaxAge: release data checked less than MaxAge ago (by sysextd or any
	// earlier command) is used without a request; 0 means
	// DefaultFreshness, negative always checks (list --refresh).
	MaxAge time.Duration
}

// DefaultFreshness is how long list trusts the last check.
const DefaultFreshness = time.Hour

// ListInfo says where list's release data came from.
type ListInfo struct {
	// CheckedAt is when the release data was last checked online (zero:
	// never). Checked is true when this call checked.
	CheckedAt time.Time `json:"checked_at"`
	Checked   bool      `json:"checked"`
}

// ListWith is List with a freshness window: within it, the answer comes
// from the cache with no request, and ListInfo says how old it is.
// Entries with nothing cached are looked up online all the same.
func (e *Engine) ListWith(ctx context.Context, o ListOptions) ([]Item, ListInfo, error) {
	inv, err := e.inventory(ctx)
	if err != nil {
		return nil, ListInfo{}, err
	}
	maxAge := o.MaxAge
	if maxAge == 0 {
		maxAge = DefaultFreshness
	}
	info := ListInfo{CheckedAt: e.lastCheck()}
	var releases map[string]fetch.Result
	switch {
	case o.Offline:
		releases = e.releases(ctx, e.manifestNames(), true)
	case maxAge > 0 && !info.CheckedAt.IsZero() && e.now().Sub(info.CheckedAt) < maxAge:
		releases = e.releases(ctx, e.manifestNames(), true)
		var missing []string
		for n, r := range releases {
			if errors.Is(r.Err, fetch.ErrNotCached) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			maps.Copy(releases, e.releases(ctx, missing, false))
		}
	default:
		releases = e.releases(ctx, e.manifestNames(), false)
		info.Checked = true
		info.CheckedAt = e.lastCheck()
	}
	items := e.listItems(inv, releases)
	return items, info, nil
}

func (e *Engine) listItems(inv *inventory, releases map[string]fetch.Result) []Item {
	pending := store.RebootPending(e.Root)
	var items []Item
	for name, in := range inv.byName {
		en := e.Manifests.Get(name)
		if en == nil && inv.get(name) == nil {
			continue
		}
		it := Item{Name: name, Image: in.Image, Reasons: []string{}, Conflicts: []string{}, InstalledBy: in.By, InManifest: en != nil}
		it.Status = status(in, inv)
		if it.Status != StatusNotInstalled {
			it.InstalledVersion = in.Version
		}
		it.Problem = in.Broken
		if en != nil {
			res := match.Evaluate(en, e.Facts)
			it.Recommended, it.Reasons = res.Recommended, res.Reasons
			it.Enabled = en.AutoEnabled()
			it.Conflicts = nonNil(e.Manifests.Conflicting(name))
		}
		if r, ok := releases[name]; ok {
			if r.Err != nil {
				it.lookupErr = r.Err
				if !errors.Is(r.Err, fetch.ErrNotCached) {
					it.Problem = joinProblem(it.Problem, r.Err.Error())
				}
			} else {
				it.AvailableVersion = r.Release.Version
				it.Unverified = r.Release.Image.Unverified
				it.Source = r.Release.Origin
			}
		}
		it.Update = e.action(en, in.Fields, releases[name].Release).String()
		it.RebootRequired = it.Status != StatusNotInstalled && pending[packageName(name, in.Fields)]
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items
}

func status(in *installed, inv *inventory) string {
	switch {
	case inv.get(in.Name) == nil:
		return StatusNotInstalled
	case in.Broken != "":
		return StatusBroken
	case inv.merged[in.Image]:
		return StatusActive
	default:
		return StatusInactive
	}
}

func (e *Engine) manifestNames() []string {
	if e.Manifests == nil {
		return nil
	}
	return e.Manifests.Names()
}

// Releases looks up, online, the release of each named manifest entry for
// this host (sysextctl mirror).
func (e *Engine) Releases(ctx context.Context, names []string) map[string]fetch.Result {
	return e.releases(ctx, names, false)
}

// releases looks up the latest release of each named manifest entry.
func (e *Engine) releases(ctx context.Context, names []string, offline bool) map[string]fetch.Result {
	out := map[string]fetch.Result{}
	if e.Source == nil || len(names) == 0 {
		return out
	}
	var reqs []fetch.Request
	for _, n := range names {
		if en := e.Manifests.Get(n); en != nil {
			reqs = append(reqs, request(en))
		}
	}
	if !offline {
		res := e.Source.LatestAll(ctx, reqs, e.target())
		e.saveSnapshot(reqs, res)
		for _, r := range res {
			if r.Err == nil {
				e.markChecked()
				break
			}
		}
		for name, r := range res {
			if r.Release != nil {
				for _, w := range r.Release.Warnings {
					e.log().Warn("extension "+name+": "+w, "extension", name)
				}
			}
		}
		return res
	}
	snap := e.loadSnapshot()
	for _, r := range reqs {
		if rel, ok := snap.lookup(r); ok {
			out[r.Name] = fetch.Result{Release: rel}
			continue
		}
		rel, err := e.Source.Cached(r, e.target())
		out[r.Name] = fetch.Result{Release: rel, Err: err}
	}
	return out
}

// action is the update action in force: the manifest's, else the image's
// UPDATE= (installed image, else the release's manifest), else none.
func (e *Engine) action(en *manifest.Entry, fields map[string]string, rel *fetch.Release) manifest.Action {
	if en != nil && en.Update != "" {
		if a, err := manifest.ParseAction(en.Update); err == nil {
			return a
		}
	}
	for _, f := range []map[string]string{fields, releaseFields(rel)} {
		if u := f["UPDATE"]; u != "" {
			if a, err := manifest.ParseAction(u); err == nil {
				return a
			}
		}
	}
	return manifest.Action{Kind: manifest.ActionNone}
}

func releaseFields(rel *fetch.Release) map[string]string {
	if rel == nil {
		return nil
	}
	return rel.Fields
}

func packageName(name string, fields map[string]string) string {
	if p := fields["PACKAGE"]; p != "" {
		return p
	}
	return name
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func joinProblem(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// lastCheckFile records when release data was last checked online. It
// lives in the cache: losing it only costs one check.
const lastCheckFile = "last-check"

// lastCheck is when releases were last checked online, zero when unknown.
func (e *Engine) lastCheck() time.Time {
	fi, err := os.Stat(filepath.Join(e.Root.Path(rootfs.CacheDir), lastCheckFile))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// markChecked records a check now. An unprivileged list cannot write the
// cache: then the next list checks again, which is only slower.
func (e *Engine) markChecked() {
	p := filepath.Join(e.Root.Path(rootfs.CacheDir), lastCheckFile)
	now := e.now()
	if err := os.Chtimes(p, now, now); err == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.Close()
		_ = os.Chtimes(p, now, now)
	}
}
