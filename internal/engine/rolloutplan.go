package engine

import (
	"context"
	"fmt"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/version"
)

// The plan's side of a phased or withdrawn release (docs/fleet.md). The
// newest release a source offers may be refused here: withdrawn, or
// phased away from this appliance (neither pinned nor --ignore-phasing).
// The lookup then asks the source again with that tag in Request.Skip,
// up to maxRolloutSkips times, so that:
//   - a fresh install takes the newest release not refused;
//   - an installed extension updates to the newest release not refused
//     when it is newer, and stays otherwise, saying why;
//   - an appliance running a withdrawn release goes to the newest release
//     not refused: from previous/ when that is the one (offline), else
//     downloaded and verified as any update.
// When the source has nothing else (or cannot be reached) the refused
// release stays the answer and rolloutStep decides as before: back to the
// kept previous image, or a failure naming the release.

// maxRolloutSkips bounds the lookups a plan makes past refused releases.
const maxRolloutSkips = 5

// refusedRelease is a release the lookup stepped over, with its rollout.
type refusedRelease struct {
	rel *source.Release
	ro  Rollout
}

// refuses reports whether rel, with its rollout ro, is not for this
// appliance now: withdrawn, or phased away and not pinned.
func (in planInput) refuses(name string, rel *source.Release, ro Rollout) bool {
	if ro.Withdrawn {
		return true
	}
	if !ro.PhasedOut() || in.ignorePhasing {
		return false
	}
	cur := in.inv.get(name)
	return cur == nil || pinOf(cur) != rel.Version
}

// skipRefused looks past refused releases: each request whose answer is
// refused is asked again with that tag skipped, and the newer answer
// replaces it, its rollout read as any other. Pinned and local requests
// are left alone (a pin names its release).
func (e *Engine) skipRefused(ctx context.Context, in *planInput, reqs []source.Request) {
	if e.Source == nil {
		return
	}
	pending := map[string]source.Request{}
	for _, r := range reqs {
		if _, local := in.local[r.Name]; !local && r.Version == "" {
			pending[r.Name] = r
		}
	}
	for round := 0; round < maxRolloutSkips && len(pending) > 0; round++ {
		var again []source.Request
		for name, req := range pending {
			r := in.releases[name]
			if r.Err != nil || r.Release == nil || req.Skips(r.Release.Tag) || !in.refuses(name, r.Release, in.rollout[name]) {
				delete(pending, name)
				continue
			}
			in.refused[name] = append(in.refused[name], refusedRelease{rel: r.Release, ro: in.rollout[name]})
			req.Skip = append(append([]string(nil), req.Skip...), r.Release.Tag)
			pending[name] = req
			again = append(again, req)
		}
		if len(again) == 0 {
			return
		}
		res := e.Source.LatestAll(ctx, again, e.target())
		e.verifyHints(ctx, res)
		ros := e.rollouts(ctx, res)
		for name, r := range res {
			if r.Err != nil || r.Release == nil {
				// Nothing else (ErrAllSkipped), or unreachable: the refused
				// answer stands and rolloutStep decides.
				e.log().Info(fmt.Sprintf("%s: no release past %v: %v", name, pending[name].Skip, r.Err), "extension", name)
				delete(pending, name)
				continue
			}
			in.releases[name] = r
			if ro, ok := ros[name]; ok {
				in.rollout[name] = ro
			} else {
				delete(in.rollout, name)
			}
		}
	}
}

// pastRefused decides an installed extension's step once the lookup has
// stepped over refused releases to step.Release, which is not refused.
// decided is false when the usual comparison applies (a fresh install, or
// an update to a newer release).
func (in planInput) pastRefused(p *Plan, step Step, cur *installed) (Step, bool, bool) {
	refused := in.refused[step.Name]
	if len(refused) == 0 || cur == nil || !cur.Present || cur.Broken != "" || pinOf(cur) != "" {
		return Step{}, false, false
	}
	rel := step.Release
	cmp, err := version.Stamp{Version: rel.Version, BuildTime: rel.BuildTime}.Compare(version.Stamp{Version: cur.Version, BuildTime: cur.BuildTime})
	if err != nil {
		return Step{}, false, false // upgradeStep reports it
	}
	if w := runsWithdrawn(refused, cur); w != nil && cmp != 0 {
		step.Op, step.From, step.By = OpUpdate, cur.Version, cur.By
		step.Reason = fmt.Sprintf("release %s is withdrawn: going to %s, the newest release not withdrawn", w.rel.Tag, rel.Tag)
		if cmp < 0 {
			step.Reason = fmt.Sprintf("release %s is withdrawn: going back to %s, the newest release not withdrawn", w.rel.Tag, rel.Tag)
			step.leaving = w.rel.Tag
			if prev := cur.Record.Previous; prev != nil && prev.Version == rel.Version && prev.BuildTime == rel.BuildTime {
				step.goBack = true // the kept copy: no download
			}
		}
		return step, true, true
	}
	if cmp <= 0 {
		newest := refused[0]
		return Step{Op: OpNone, Name: step.Name, Image: cur.Image, From: cur.Version,
			Reason: fmt.Sprintf("release %s is %s", newest.rel.Tag, newest.ro.Describe())}, true, true
	}
	return Step{}, false, false
}

// runsWithdrawn is the withdrawn release among refused that cur runs.
func runsWithdrawn(refused []refusedRelease, cur *installed) *refusedRelease {
	for i, r := range refused {
		if r.ro.Withdrawn && r.rel.Version == cur.Version && r.rel.BuildTime == cur.BuildTime {
			return &refused[i]
		}
	}
	return nil
}

// rolloutStep decides a step whose release is withdrawn or phased away
// for this appliance (docs/fleet.md); decided is false when the rollout
// has nothing to say. A pin to the release wins over its phase.
func (in planInput) rolloutStep(p *Plan, step Step, cur *installed) (Step, bool, bool) {
	ro, ok := in.rollout[step.Name]
	if !ok {
		return Step{}, false, false
	}
	rel := step.Release
	installed := cur != nil && cur.Present && cur.Broken == ""
	switch {
	case ro.Withdrawn && installed && cur.Version == rel.Version && cur.BuildTime == rel.BuildTime:
		if cur.Record == nil || cur.Record.Previous == nil {
			p.fail(step.Name, fmt.Errorf("%s runs release %s, which is withdrawn, and no previous image is kept to go back to", step.Name, rel.Tag))
			return Step{}, false, true
		}
		step.Op, step.From, step.To, step.By = OpUpdate, cur.Version, cur.Record.Previous.Version, cur.By
		step.Reason = fmt.Sprintf("release %s is withdrawn: going back to %s", rel.Tag, cur.Record.Previous.Version)
		step.goBack = true
		return step, true, true
	case ro.Withdrawn && installed:
		return Step{Op: OpNone, Name: step.Name, Image: cur.Image, From: cur.Version,
			Reason: fmt.Sprintf("release %s is withdrawn: staying on %s", rel.Tag, cur.Version)}, true, true
	case ro.Withdrawn:
		p.fail(step.Name, fmt.Errorf("looking up %s: the newest release %s is withdrawn", step.Name, rel.Tag))
		return Step{}, false, true
	case !ro.PhasedOut() || in.ignorePhasing:
		return Step{}, false, false
	case cur != nil && pinOf(cur) == rel.Version:
		return Step{}, false, false
	case installed:
		return Step{Op: OpNone, Name: step.Name, Image: cur.Image, From: cur.Version,
			Reason: fmt.Sprintf("release %s is %s", rel.Tag, ro.Describe())}, true, true
	}
	p.fail(step.Name, fmt.Errorf("looking up %s: the newest release %s is %s (install --ignore-phasing takes it)", step.Name, rel.Tag, ro.Describe()))
	return Step{}, false, true
}

// AvailableRollout is what list --offline says of name's available
// release: its version and its rollout for this appliance, from the data
// the last check cached (explain). ok is false when nothing is cached.
func (e *Engine) AvailableRollout(ctx context.Context, name string) (version string, ro Rollout, ok bool) {
	en := e.Manifests.Get(name)
	if en == nil || e.Source == nil {
		return "", Rollout{}, false
	}
	res := e.lookupAt(ctx, []source.Request{e.pinnedRequest(en, e.pins())}, true, e.now())
	r := res[name]
	if r.Err != nil || r.Release == nil {
		return "", Rollout{}, false
	}
	ro, ok = e.rollouts(ctx, res)[name]
	return r.Release.Version, ro, ok
}
