package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/store"
)

// startUnits loads and starts the units an extension ships, runtime-enabled
// as its package's postinst would have done.
func (e *Engine) startUnits(ctx context.Context, units []string) error {
	if len(units) == 0 {
		return nil
	}
	if e.Units == nil {
		e.log().Warn("no service manager: not starting units " + strings.Join(units, " "))
		return nil
	}
	// Enable first, so that the reload gives the targets their new
	// dependencies. Always reload: a unit systemd has loaded keeps what it
	// read until one, and systemd finds a new unit file without one only
	// when the mtime of a unit directory changed since it last built its
	// path cache; an overlay reports its topmost layer's mtime, so merging
	// one more extension under the same topmost directory changes nothing
	// it sees, and the start answers "not found" (docs/systemd-sysext.md).
	if err := e.Units.EnableRuntime(ctx, units); err != nil {
		return err
	}
	if err := e.Units.Reload(ctx); err != nil {
		return err
	}
	return e.Units.StartAll(ctx, units)
}

// freshLoader is a service manager that tells which units it holds and
// rescans its unit directories without a daemon-reload (units.Manager).
type freshLoader interface {
	Loaded(ctx context.Context, names []string) ([]string, error)
	RescanUnitPaths() error
}

// startUnitsUnloaded starts units as startUnits does, but without the
// daemon-reload when none is owed: the manager holds none of the units the
// merged images configure (configures) yet, and no image ships what only a
// reload takes in (reloadOnly, "" for none). A unit the manager never
// loaded is read from disk, drop-ins included, at its first load once the
// unit path cache is rescanned. That is the daemon's start at boot, where
// the reload was a third of its time to READY (docs/PERFORMANCE.md). The
// targets the units are runtime-enabled into learn their new dependencies
// at the next reload. With no units to start it still reloads when one is
// owed: an image with a drop-in for a unit the manager holds.
func (e *Engine) startUnitsUnloaded(ctx context.Context, units, configures []string, reloadOnly string) error {
	fl, ok := e.Units.(freshLoader)
	if !ok {
		return e.startUnits(ctx, units)
	}
	why := reloadOnly
	if why == "" {
		held, err := fl.Loaded(ctx, uniq(append(slices.Clone(configures), units...)))
		switch {
		case err != nil:
			why = "it cannot tell what it holds: " + err.Error()
		case len(held) > 0:
			why = "it holds " + strings.Join(held, " ") + " as it was before the merge"
		}
	}
	if why != "" {
		e.log().Debug("reloading the service manager: " + why)
		if len(units) == 0 {
			return e.Units.Reload(ctx)
		}
		return e.startUnits(ctx, units)
	}
	if len(units) == 0 {
		return nil
	}
	if err := e.Units.EnableRuntime(ctx, units); err != nil {
		return err
	}
	if err := fl.RescanUnitPaths(); err != nil {
		e.log().Warn("reloading the service manager: " + err.Error())
		if err := e.Units.Reload(ctx); err != nil {
			return err
		}
	}
	return e.Units.StartAll(ctx, units)
}

func (e *Engine) stopUnits(ctx context.Context, units []string) {
	if len(units) == 0 || e.Units == nil {
		return
	}
	for _, u := range units {
		if err := e.Units.Stop(ctx, u); err != nil {
			e.log().Warn("stopping "+u+": "+err.Error(), "unit", u)
		}
	}
	if err := e.Units.DisableRuntime(ctx, units); err != nil {
		e.log().Warn("disabling units: "+err.Error(), "units", strings.Join(units, " "))
	}
}

// applyAction runs a step's resolved update action after a successful merge.
func (e *Engine) applyAction(ctx context.Context, name string, act manifest.Action, fields map[string]string) error {
	switch act.Kind {
	case manifest.ActionService:
		if e.Units == nil {
			e.log().Warn(name+": no service manager: not restarting "+strings.Join(act.Units, " "), "extension", name)
			return nil
		}
		for _, u := range act.Units {
			if err := e.Units.Restart(ctx, u); err != nil {
				return fmt.Errorf("update action %q: %w", act, err)
			}
		}
	case manifest.ActionReboot:
		return store.MarkRebootRequired(e.Root, packageName(name, fields))
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

func uniq(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func without(s, drop []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}
