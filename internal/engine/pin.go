package engine

import (
	"context"
	"fmt"
)

// PinPlan pins name to version and plans bringing it there. An installed
// extension is pinned at once and updated by the plan when the release
// found is the pinned one. One not installed is installed at that release
// and pinned by the install's own commit (Step.PinAfter), so a failed or
// interrupted install leaves no pin behind on nothing. The sources find a
// release's newest version only: a pin to another version of an
// extension not installed is a plan failure saying what was found. The
// caller holds the lock (nothing changes with dryRun). A pin wins over a
// phase, installed or not.
func (e *Engine) PinPlan(ctx context.Context, name, version string, dryRun bool) (*Plan, error) {
	st, err := e.store().LoadState()
	if err != nil {
		return nil, err
	}
	if st.Extensions[name] != nil {
		if !dryRun {
			if err := e.SetPin(name, version); err != nil {
				return nil, err
			}
		}
		return e.MakePlan(ctx, VerbUpdate, []string{name})
	}
	// A pin wins over a phase: the pinned release is taken even where it is
	// phased away for this appliance (a withdrawn one is still refused).
	ignore := e.IgnorePhasing
	e.IgnorePhasing = true
	p, err := e.MakePlan(ctx, VerbInstall, []string{name})
	e.IgnorePhasing = ignore
	if err != nil {
		return nil, err
	}
	p.Verb = "pin"
	for i := range p.Steps {
		s := &p.Steps[i]
		if s.Name != name || s.Op != OpInstall {
			continue
		}
		if s.To != version {
			p.Steps = append(p.Steps[:i], p.Steps[i+1:]...)
			p.fail(name, fmt.Errorf("pinning %s to %s: the release found is %s (tag %s); only the newest release can be installed", name, version, s.To, s.Release.Tag))
			break
		}
		s.PinAfter, s.Reason = version, "pinned to "+version
	}
	return p, nil
}
