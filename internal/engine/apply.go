package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/store"
)

// txn is one step's changes to the store, undone together on failure.
type txn struct {
	e        *Engine
	changes  []*store.Change
	stopped  []string // units stopped for removed extensions, restarted on undo
	expected map[string]bool
	gone     map[string]bool
}

func (e *Engine) newTxn(ctx context.Context) *txn {
	t := &txn{e: e, expected: map[string]bool{}, gone: map[string]bool{}}
	// Whatever is merged now and stays in the store must still be merged
	// afterwards: a step may never cost the host another extension.
	if e.Sysext != nil {
		if merged, err := e.Sysext.Merged(ctx); err == nil {
			for _, m := range merged {
				if _, err := os.Stat(e.store().ImagePath(m)); err == nil {
					t.expected[m] = true
				}
			}
		}
	}
	return t
}

// activate refreshes and checks that exactly the expected images merged.
func (t *txn) activate(ctx context.Context) error {
	if err := t.e.Sysext.Refresh(ctx); err != nil {
		return fmt.Errorf("refreshing extensions: %w", err)
	}
	merged, err := t.e.Sysext.Merged(ctx)
	if err != nil {
		return fmt.Errorf("checking what is merged: %w", err)
	}
	have := map[string]bool{}
	for _, m := range merged {
		have[m] = true
	}
	var missing, stale []string
	for img := range t.expected {
		if !t.gone[img] && !have[img] {
			missing = append(missing, img)
		}
	}
	for img := range t.gone {
		if have[img] {
			stale = append(stale, img)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not merged after refresh: %s", strings.Join(sortedList(missing), ", "))
	}
	if len(stale) > 0 {
		return fmt.Errorf("still merged after removal: %s", strings.Join(sortedList(stale), ", "))
	}
	return nil
}

// rollback undoes every change, refreshes and restarts what was stopped.
func (t *txn) rollback(ctx context.Context) error {
	var errs []error
	for i := len(t.changes) - 1; i >= 0; i-- {
		errs = append(errs, t.changes[i].Undo())
	}
	// Use a context that survives a cancelled run: rolling back must finish.
	ctx = context.WithoutCancel(ctx)
	if t.e.Sysext != nil {
		errs = append(errs, t.e.Sysext.Refresh(ctx))
	}
	if t.e.Units != nil {
		errs = append(errs, t.e.Units.Reload(ctx))
		for _, u := range t.stopped {
			errs = append(errs, t.e.Units.Start(ctx, u))
		}
	}
	return errors.Join(errs...)
}

func (t *txn) commit() {
	for _, c := range t.changes {
		if err := c.Commit(); err != nil {
			t.e.log().Warn("dropping backup", "err", err)
		}
	}
}

// install downloads, validates and activates one extension (a new install
// or an update), removing conflicting ones in the same transaction.
func (e *Engine) install(ctx context.Context, s Step) Result {
	res := Result{Name: s.Name, Op: s.Op, From: s.From, To: s.To}
	fail := func(err error) Result {
		r := failed(s.Name, s.Op, err)
		r.From, r.To, r.RolledBack = s.From, s.To, res.RolledBack
		return r
	}
	st := e.store()
	staging, err := st.StagingDir()
	if err != nil {
		return fail(err)
	}
	dl, err := e.Source.Download(ctx, s.Release.Image, staging)
	if err != nil {
		return fail(fmt.Errorf("downloading %s: %w", s.Release.Image.Name, err))
	}
	defer os.Remove(dl.Path) // gone already once placed
	info, err := image.Inspect(dl.Path)
	if err != nil {
		return fail(fmt.Errorf("reading %s %s: %w", s.Name, s.To, err))
	}
	warnings, err := image.Validate(info, e.host(), s.Image)
	if err != nil {
		return fail(fmt.Errorf("refusing %s %s: %w", s.Name, s.To, err))
	}
	for _, w := range warnings {
		e.log().Warn(w, "extension", s.Name)
	}

	// From here on the host changes: a cancelled run (SIGTERM) finishes the
	// step rather than leaving it half done.
	ctx, cancel := critical(ctx)
	defer cancel()
	inv, err := e.inventory(ctx)
	if err != nil {
		return fail(err)
	}
	t := e.newTxn(ctx)
	for _, c := range s.Removes {
		old := inv.get(c)
		if old == nil {
			continue
		}
		e.stopUnits(ctx, old.Units)
		t.stopped = append(t.stopped, old.Units...)
		ch, err := st.Take(old.Image)
		if err != nil {
			t.rollback(ctx)
			return fail(err)
		}
		t.changes = append(t.changes, ch)
		t.gone[old.Image] = true
	}
	ch, err := st.Place(dl.Path, s.Image)
	if err != nil {
		t.rollback(ctx)
		return fail(err)
	}
	t.changes = append(t.changes, ch)
	t.expected[s.Image] = true

	act := e.action(e.Manifests.Get(s.Name), info.Fields, s.Release)
	undo := func(cause error) Result {
		res.RolledBack = true
		if rerr := t.rollback(ctx); rerr != nil {
			cause = fmt.Errorf("%w; rolled back the store, but reactivating failed too: %v", cause, rerr)
		} else if s.From != "" {
			cause = fmt.Errorf("%w; rolled back to %s", cause, s.From)
		} else {
			cause = fmt.Errorf("%w; rolled back", cause)
		}
		if act.Kind == manifest.ActionService && s.Op == OpUpdate && e.Units != nil {
			for _, u := range act.Units {
				if err := e.Units.Restart(context.WithoutCancel(ctx), u); err != nil {
					cause = fmt.Errorf("%w; restarting %s on the previous version: %v", cause, u, err)
				}
			}
		}
		return fail(cause)
	}
	if err := t.activate(ctx); err != nil {
		return undo(err)
	}
	if err := e.startUnits(ctx, info.Units); err != nil {
		return undo(err)
	}
	if s.Op == OpUpdate {
		if err := e.applyAction(ctx, s, act, info.Fields); err != nil {
			return undo(err)
		}
		res.Action = act.String()
	}
	t.commit()

	if err := e.record(s, info, dl.SHA256, func(state *store.State) {
		for _, c := range s.Removes {
			delete(state.Extensions, c)
		}
	}); err != nil {
		return fail(err)
	}
	res.OK, res.Removed = true, s.Removes
	verb := "installed"
	if s.Op == OpUpdate {
		verb = "updated from " + s.From + " to"
	}
	res.Message = fmt.Sprintf("%s %s %s", s.Name, verb, s.To)
	if len(s.Removes) > 0 {
		res.Message += fmt.Sprintf(" (removed conflicting %s)", strings.Join(s.Removes, ", "))
	}
	return res
}

// record writes the state entry of a finished install or update.
func (e *Engine) record(s Step, info *image.Info, digest string, also func(*store.State)) error {
	st := e.store()
	state, err := st.LoadState()
	if err != nil {
		return err
	}
	by := s.By
	if prev := state.Extensions[s.Name]; by == "" && prev != nil {
		by = prev.InstalledBy
	}
	if by == "" {
		by = store.ByManual
	}
	state.Extensions[s.Name] = &store.Record{
		Name: s.Name, Image: s.Image, Tag: s.Release.Tag, Version: s.Release.Version,
		BuildTime: s.Release.BuildTime, Digest: digest, InstalledBy: by,
		InstalledAt: e.now().UTC(), Units: info.Units,
	}
	if also != nil {
		also(state)
	}
	return st.SaveState(state)
}

// remove stops an extension's units, takes its image out and refreshes.
func (e *Engine) remove(ctx context.Context, s Step) Result {
	ctx, cancel := critical(ctx)
	defer cancel()
	inv, err := e.inventory(ctx)
	if err != nil {
		return failed(s.Name, s.Op, err)
	}
	cur := inv.get(s.Name)
	if cur == nil {
		return Result{Name: s.Name, Op: OpNone, OK: true, Message: s.Name + " is not installed"}
	}
	t := e.newTxn(ctx)
	e.stopUnits(ctx, cur.Units)
	t.stopped = cur.Units
	ch, err := e.store().Take(cur.Image)
	if err != nil {
		t.rollback(ctx)
		return failed(s.Name, s.Op, err)
	}
	t.changes = append(t.changes, ch)
	t.gone[cur.Image] = true
	if err := t.activate(ctx); err != nil {
		r := failed(s.Name, s.Op, fmt.Errorf("removing %s: %w; kept it", s.Name, err))
		if rerr := t.rollback(ctx); rerr != nil {
			r = failed(s.Name, s.Op, fmt.Errorf("removing %s: %w; kept it, but reactivating failed too: %v", s.Name, err, rerr))
		}
		r.RolledBack = true
		return r
	}
	t.commit()
	if e.Units != nil {
		if err := e.Units.Reload(ctx); err != nil {
			e.log().Warn("reloading units", "err", err)
		}
	}
	st := e.store()
	state, err := st.LoadState()
	if err == nil {
		delete(state.Extensions, s.Name)
		err = st.SaveState(state)
	}
	if err != nil {
		return failed(s.Name, s.Op, err)
	}
	return Result{Name: s.Name, Op: OpRemove, OK: true, From: cur.Version, Message: "removed " + s.Name}
}

// criticalTimeout bounds a step that may no longer be cancelled.
const criticalTimeout = 10 * time.Minute

// critical detaches ctx from cancellation, with a generous bound, for the
// part of a step that changes the host and must complete or roll back.
func critical(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), criticalTimeout)
}

// startUnits loads and starts the units an extension ships, runtime-enabled
// as its package's postinst would have done.
func (e *Engine) startUnits(ctx context.Context, units []string) error {
	if len(units) == 0 {
		return nil
	}
	if e.Units == nil {
		e.log().Warn("no service manager: not starting units", "units", strings.Join(units, " "))
		return nil
	}
	if err := e.Units.Reload(ctx); err != nil {
		return err
	}
	if err := e.Units.EnableRuntime(ctx, units); err != nil {
		return err
	}
	for _, u := range units {
		if err := e.Units.Start(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) stopUnits(ctx context.Context, units []string) {
	if len(units) == 0 || e.Units == nil {
		return
	}
	for _, u := range units {
		if err := e.Units.Stop(ctx, u); err != nil {
			e.log().Warn("stopping unit", "unit", u, "err", err)
		}
	}
	if err := e.Units.DisableRuntime(ctx, units); err != nil {
		e.log().Warn("disabling units", "err", err)
	}
}

// applyAction runs an update action after a successful merge.
func (e *Engine) applyAction(ctx context.Context, s Step, act manifest.Action, fields map[string]string) error {
	switch act.Kind {
	case manifest.ActionService:
		if e.Units == nil {
			e.log().Warn("no service manager: not restarting", "extension", s.Name, "units", strings.Join(act.Units, " "))
			return nil
		}
		for _, u := range act.Units {
			if err := e.Units.Restart(ctx, u); err != nil {
				return fmt.Errorf("update action %q: %w", act, err)
			}
		}
	case manifest.ActionReboot:
		return store.MarkRebootRequired(e.Root, packageName(s.Name, fields))
	}
	return nil
}

func sortedList(s []string) []string {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return sortedKeys(m)
}
