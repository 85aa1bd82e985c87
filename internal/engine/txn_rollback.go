package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// rollback undoes the phases done before failed failed with cause, and
// returns cause with every undo error joined to it. A commit that failed
// after the state was written is not undone (the step stands).
func (t *txn) rollback(ctx context.Context, failed Phase, cause error) error {
	if !slices.Contains(t.done, PhasePlace) && t.st == nil {
		return cause // nothing on the host changed
	}
	ctx = context.WithoutCancel(ctx)
	e := t.e
	errs := []error{cause}
	add := func(what string, err error) {
		if err != nil {
			e.log().Error(t.s.Name+": rollback: "+what+": "+err.Error(), "extension", t.s.Name)
			errs = append(errs, fmt.Errorf("rollback: %s: %w", what, err))
		}
	}
	in := t.st.Intent()
	if e.Units != nil {
		for _, u := range in.NewUnits {
			add("stopping "+u, e.Units.Stop(ctx, u))
		}
		if len(in.NewUnits) > 0 {
			add("disabling "+strings.Join(in.NewUnits, " "), e.Units.DisableRuntime(ctx, in.NewUnits))
		}
	}
	if t.payloadChange != nil {
		add("restoring etc/ files", t.payloadChange.Undo())
	}
	add("restoring the store", t.st.Undo())
	if e.Sysext != nil { // nil before the merge (BeforeMerge)
		add("refreshing extensions", e.Sysext.Refresh(ctx))
	}
	if e.Units != nil {
		add("reloading units", e.Units.Reload(ctx))
		for _, u := range in.RestoreUnits {
			add("restarting "+u+" on the previous version", e.Units.Restart(ctx, u))
		}
	}
	add("clearing the intent", t.st.Finish())
	var done string
	switch {
	case t.s.Op == OpRemove:
		done = "kept it"
	case t.s.From != "":
		done = "rolled back to " + t.s.From
	default:
		done = "rolled back"
	}
	if len(errs) == 1 {
		return &RollbackError{Phase: failed, Err: fmt.Errorf("%w; %s", cause, done), Clean: true}
	}
	return &RollbackError{Phase: failed, Err: fmt.Errorf("%w; %s, but the rollback met errors: %w", cause, done, errors.Join(errs[1:]...))}
}

// RollbackError is a step that failed in Phase after it had changed the
// host and was rolled back. Clean is false when the rollback itself met
// errors (they are joined into Err).
type RollbackError struct {
	Phase Phase
	Err   error
	Clean bool
}

func (e *RollbackError) Error() string { return e.Err.Error() }
func (e *RollbackError) Unwrap() error { return e.Err }
