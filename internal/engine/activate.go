package engine

import (
	"context"
	"fmt"
	"strings"
)

// Activate makes sure every usable installed image is merged and its units
// run: what the daemon does at boot. It refreshes only when something is
// not merged yet.
func (e *Engine) Activate(ctx context.Context) error {
	inv, err := e.inventory(ctx)
	if err != nil {
		return err
	}
	need := false
	var units, configures, reloadOnly []string
	for _, n := range inv.names() {
		in := inv.get(n)
		if in.Present && in.Broken == "" {
			need = need || !inv.merged[in.Image]
			units = append(units, in.Units...)
			if in.info != nil {
				c, why := in.info.ManagerChanges()
				configures = append(configures, c...)
				if why != "" {
					reloadOnly = append(reloadOnly, n+": "+why)
				}
			}
		}
	}
	if need {
		// Refresh detaches from ctx itself: never cut short mid-merge.
		if err := e.Sysext.Refresh(ctx); err != nil {
			return fmt.Errorf("activating installed extensions: %w", err)
		}
	}
	return e.startUnitsUnloaded(ctx, units, configures, strings.Join(reloadOnly, "; "))
}

// StartOptions choose between the two start sequences and say whom Start
// tells what it did, as it happens.
type StartOptions struct {
	// Boot is the daemon's start: builds fetched for this OS before an
	// upgrade go in first (ActivateStaged), a failed adoption is logged
	// rather than fatal, and every installed image is made merged and
	// running even when adoption changed nothing. Without it (a sysextctl
	// verb about to plan), activation follows adoption only when adoption
	// changed the store.
	Boot bool
	// OnRecovered receives Recover's outcome, before anything else runs.
	OnRecovered func(Recovery, error)
	// OnStaged receives what ActivateStaged did (Boot only).
	OnStaged func([]Result)
	// OnAdopted receives what Adopt did, when it succeeded.
	OnAdopted func(Adoption)
}

// Start runs, under the lock, what must precede anything else, for the
// daemon at start and for every sysextctl verb that changes extensions:
// undo an interrupted step (Recover), take over sysext.pl's leftovers
// (Adopt), and make sure what is installed is merged and its units run
// (Activate). It needs no network.
func (e *Engine) Start(ctx context.Context, o StartOptions) error {
	rec, err := e.Recover(ctx)
	if o.OnRecovered != nil {
		o.OnRecovered(rec, err)
	}
	if err != nil {
		return err
	}
	if o.Boot {
		staged := e.ActivateStaged(ctx)
		if o.OnStaged != nil {
			o.OnStaged(staged)
		}
	}
	ad, err := e.Adopt() // each move is logged as a warning
	switch {
	case err != nil && !o.Boot:
		return err
	case err != nil:
		e.log().Error("adopting sysext.pl images failed: "+err.Error(), "err", err)
	case o.OnAdopted != nil:
		o.OnAdopted(ad)
	}
	if o.Boot || len(ad.Adopted) > 0 || len(ad.Moved) > 0 {
		return e.Activate(ctx)
	}
	return nil
}
