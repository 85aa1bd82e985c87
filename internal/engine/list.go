package engine

import (
	"context"
	"errors"
	"maps"
	"sort"
	"time"

	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/match"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/version"
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
	// Held, HoldReason and Pin come from sysextctl hold/pin/rollback;
	// PreviousVersion is what `sysextctl rollback` would go back to.
	// UpdateAvailable is true when update would install the available
	// release (a newer version, or a rebuild: the same PACKAGE_VERSION
	// with a newer BUILD_TIME, whose build time AvailableBuildTime gives).
	UpdateAvailable    bool   `json:"update_available"`
	AvailableBuildTime string `json:"available_build_time,omitempty"`
	// SignedBy is the key that verified the installed release, or
	// "unsigned".
	SignedBy        string `json:"signed_by,omitempty"`
	Held            bool   `json:"held,omitempty"`
	HoldReason      string `json:"hold_reason,omitempty"`
	Pin             string `json:"pin,omitempty"`
	PreviousVersion string `json:"previous_version,omitempty"`
	// Unverified: the available release's image has no published digest.
	Unverified bool `json:"unverified,omitempty"`
	// Source is where the available release was found (its URL, or
	// "local").
	Source string `json:"source,omitempty"`
	// CheckedAt is when the available release data was last checked
	// online (by this call, sysextd or an earlier command); absent when
	// unknown (--offline from the source's own cache, or never checked).
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// Rollout says, for the available release, "withdrawn" or "phased
	// (N %), not yet for this appliance" (docs/fleet.md); Phased is its
	// phased_percentage when below 100.
	Rollout   string `json:"rollout,omitempty"`
	Phased    int    `json:"phased_percentage,omitempty"`
	Withdrawn bool   `json:"withdrawn,omitempty"`
	// ProbationUntil is when the installed version's probation ends
	// (probation.go); absent when it is not on probation.
	ProbationUntil time.Time `json:"probation_until,omitzero"`

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
	// CheckedAt is when the oldest release data shown was checked online
	// (zero: never). Checked is true when this call checked every entry.
	CheckedAt time.Time `json:"checked_at"`
	Checked   bool      `json:"checked"`
}

// ListWith is List with a freshness window: an entry whose release was
// checked (by any command or sysextd) less than MaxAge ago is answered
// from the snapshot with no request; the others are looked up, together,
// online. ListInfo says how old the oldest answer is.
func (e *Engine) ListWith(ctx context.Context, o ListOptions) ([]Item, ListInfo, error) {
	inv, err := e.inventory(ctx)
	if err != nil {
		return nil, ListInfo{}, err
	}
	maxAge := o.MaxAge
	if maxAge == 0 {
		maxAge = DefaultFreshness
	}
	names := e.manifestNames()
	var info ListInfo
	releases := map[string]source.Result{}
	checked := map[string]time.Time{}
	snap := e.loadSnapshot()
	var stale []string
	pins := e.pins()
	for _, n := range names {
		en := e.Manifests.Get(n)
		if en == nil {
			continue
		}
		rel, at, ok := snap.lookup(e.pinnedRequest(en, pins))
		if ok && (o.Offline || (maxAge > 0 && e.now().Sub(at) < maxAge)) {
			releases[n] = source.Result{Release: rel}
			checked[n] = at
			if info.CheckedAt.IsZero() || at.Before(info.CheckedAt) {
				info.CheckedAt = at
			}
			continue
		}
		stale = append(stale, n)
	}
	if len(stale) > 0 {
		now := e.now()
		looked := e.releasesAt(ctx, stale, o.Offline, now)
		maps.Copy(releases, looked)
		if !o.Offline {
			for n, r := range looked {
				if r.Err == nil {
					checked[n] = now
				}
			}
			info.Checked = len(stale) == len(names)
			if info.CheckedAt.IsZero() {
				info.CheckedAt = now
			}
		}
	}
	items := e.listItems(inv, releases)
	ros := e.rollouts(ctx, releases)
	for i := range items {
		it := &items[i]
		it.CheckedAt = checked[it.Name].UTC()
		if ro, ok := ros[it.Name]; ok {
			it.Rollout, it.Withdrawn = ro.Describe(), ro.Withdrawn
			if ro.Phased < 100 {
				it.Phased = ro.Phased
			}
			if ro.Withdrawn || ro.PhasedOut() {
				it.UpdateAvailable = false
			}
		}
	}
	return items, info, nil
}

func (e *Engine) listItems(inv *inventory, releases map[string]source.Result) []Item {
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
		if p := e.overriddenBy(in.Image); p != "" && it.Status != StatusNotInstalled {
			it.Problem = joinProblem(it.Problem, p+" takes precedence: systemd-sysext merges it instead of this one")
		}
		if r := in.Record; r != nil {
			it.Held, it.HoldReason, it.Pin, it.SignedBy = r.Hold, r.HoldReason, r.Pin, r.SignedBy
			if r.Previous != nil {
				it.PreviousVersion = r.Previous.Version
			}
			if p := OnProbation(inv.state, name); p != nil && p.To == r.Version {
				it.ProbationUntil = p.Until // rollout: probation.go
			}
		}
		if w := inv.state.Withheld[name]; w != nil && in.Record == nil {
			// Held while not installed: a fresh install undone by its
			// probation or the boot assessment (probation.go).
			it.Held, it.HoldReason = true, w.Reason
		}
		if en != nil {
			res := match.Evaluate(en, e.Facts)
			it.Recommended, it.Reasons = res.Recommended, res.Reasons
			it.Enabled = en.AutoEnabled()
			it.Conflicts = nonNil(e.Manifests.Conflicting(name))
		}
		if r, ok := releases[name]; ok {
			if r.Err != nil {
				it.lookupErr = r.Err
				if !errors.Is(r.Err, source.ErrNotCached) {
					it.Problem = joinProblem(it.Problem, r.Err.Error())
				}
			} else {
				it.AvailableVersion = r.Release.Version
				// The very comparison the update plan makes, so that list
				// and update agree.
				avail := version.Stamp{Version: r.Release.Version, BuildTime: r.Release.BuildTime}
				inst := version.Stamp{Version: in.Version, BuildTime: in.BuildTime}
				if it.Status != StatusNotInstalled {
					it.UpdateAvailable, _ = version.UpdateAvailable(avail, inst)
					if version.IsRebuild(avail, inst) {
						it.AvailableBuildTime = r.Release.BuildTime
					}
				}
				it.Unverified = r.Release.Image.Unverified
				it.Source = r.Release.Origin
			}
		}
		it.Update = e.action(en, in.Fields).String()
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
func (e *Engine) Releases(ctx context.Context, names []string) map[string]source.Result {
	return e.releases(ctx, names, false)
}

// releases looks up the latest release of each named manifest entry.
func (e *Engine) releases(ctx context.Context, names []string, offline bool) map[string]source.Result {
	return e.releasesAt(ctx, names, offline, e.now())
}

// releasesAt is releases, recording the answers in the snapshot as checked
// at now.
func (e *Engine) releasesAt(ctx context.Context, names []string, offline bool, now time.Time) map[string]source.Result {
	if e.Source == nil || len(names) == 0 {
		return map[string]source.Result{}
	}
	var reqs []source.Request
	pins := e.pins()
	for _, n := range names {
		if en := e.Manifests.Get(n); en != nil {
			reqs = append(reqs, e.pinnedRequest(en, pins))
		}
	}
	return e.lookupAt(ctx, reqs, offline, now)
}

// lookupAt answers reqs, online or from the snapshot and the sources'
// caches, recording online answers in the snapshot as checked at now.
func (e *Engine) lookupAt(ctx context.Context, reqs []source.Request, offline bool, now time.Time) map[string]source.Result {
	out := map[string]source.Result{}
	if e.Source == nil || len(reqs) == 0 {
		return out
	}
	if !offline {
		res := e.Source.LatestAll(ctx, reqs, e.target())
		e.verifyHints(ctx, res)
		e.saveSnapshot(reqs, res, now)
		return res
	}
	snap := e.loadSnapshot()
	for _, r := range reqs {
		if rel, _, ok := snap.lookup(r); ok {
			out[r.Name] = source.Result{Release: rel}
			continue
		}
		rel, err := e.Source.Cached(r, e.target())
		out[r.Name] = source.Result{Release: rel, Err: err}
	}
	return out
}

// action is the update action in force, as list shows it: the local
// manifests', else the installed (verified) image's UPDATE=, else none.
// A release's .manifest is never consulted: it is not verified, and what
// it says is only applied once the image itself says it (docs/trust.md).
func (e *Engine) action(en *manifest.Entry, fields map[string]string) manifest.Action {
	if a, from := manifestAction(en); from == ActionFromManifest {
		return a
	}
	if a, err := manifest.ParseAction(fields["UPDATE"]); err == nil {
		return a
	}
	return manifest.Action{Kind: manifest.ActionNone}
}

// manifestAction is the entry's own update =, or ActionFromImage when it
// sets none.
func manifestAction(en *manifest.Entry) (manifest.Action, string) {
	if en != nil && en.Update != "" {
		if a, err := manifest.ParseAction(en.Update); err == nil {
			return a, ActionFromManifest
		}
	}
	return manifest.Action{Kind: manifest.ActionNone}, ActionFromImage
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
