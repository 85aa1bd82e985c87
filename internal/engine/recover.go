package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spamtagger/sysextd/internal/payload"
	"github.com/spamtagger/sysextd/internal/store"
)

// Recovery is what Recover did.
type Recovery struct {
	// Undone is the interrupted step that was undone, or nil.
	Undone *store.Intent `json:"undone,omitempty"`
	// Removed lists leftover files that were cleared (partial downloads,
	// backups of committed steps), as in-root paths.
	Removed []string `json:"removed,omitempty"`
}

// Recover finishes what a crash or a kill interrupted. An interrupted step
// is undone: its images are restored from their backups, the units it
// started are stopped, what is installed is merged again and the units it
// stopped or restarted run again on the previous version. Then partial
// downloads and leftover backups are cleared. It needs no network. The
// caller holds the lock; every mutating verb and the daemon's start call it
// before anything else. Every refresh and unit job runs detached from ctx's
// cancellation: a recovery is never abandoned half way.
func (e *Engine) Recover(ctx context.Context) (Recovery, error) {
	var rec Recovery
	st := e.store()
	p, err := st.Pending()
	if err != nil {
		return rec, err
	}
	if p != nil {
		ctx, cancel := protected(ctx)
		defer cancel()
		e.log().Warn(fmt.Sprintf("undoing the interrupted %s of %s", p.Op, p.Name), "extension", p.Name)
		var errs []error
		add := func(what string, err error) {
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
			}
		}
		if e.Units != nil {
			for _, u := range p.NewUnits {
				add("stopping "+u, e.Units.Stop(ctx, u))
			}
			if len(p.NewUnits) > 0 {
				add("disabling "+strings.Join(p.NewUnits, " "), e.Units.DisableRuntime(ctx, p.NewUnits))
			}
		}
		if err := st.UndoFiles(*p); err != nil {
			// Leave the intent recorded: the next start tries again.
			return rec, fmt.Errorf("undoing the interrupted %s of %s: %w", p.Op, p.Name, err)
		}
		if err := payload.Recover(e.Root, e.payloadJournal()); err != nil {
			return rec, fmt.Errorf("undoing the interrupted %s of %s: %w", p.Op, p.Name, err)
		}
		if e.Sysext != nil {
			add("refreshing extensions", e.Sysext.Refresh(ctx))
		}
		if e.Units != nil {
			add("reloading units", e.Units.Reload(ctx))
			for _, u := range p.RestoreUnits {
				add("restarting "+u, e.Units.Restart(ctx, u))
			}
		}
		// The store is as it was before the step: a refresh or unit that
		// fails now would have failed before it too, so the intent is done
		// with (a stuck intent would refuse every later step).
		if err := st.ClearPending(); err != nil {
			return rec, err
		}
		rec.Undone = p
		if err := errors.Join(errs...); err != nil {
			return rec, fmt.Errorf("undid the interrupted %s of %s, but: %w", p.Op, p.Name, err)
		}
	}
	// A journal without a pending step belongs to a step that committed.
	if err := payload.Discard(e.payloadJournal()); err != nil {
		return rec, err
	}
	removed, err := st.Clean()
	rec.Removed = removed
	if err != nil {
		return rec, fmt.Errorf("clearing leftovers: %w", err)
	}
	return rec, nil
}
