package daemon

import (
	"context"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/units"
)

// probationPoll is how often the units of a change on probation are
// looked at: a service that dies is rolled back within this of its death.
const probationPoll = 2 * time.Second

// watchProbation owns every probation, whoever made the change (the
// daemon's own cycle, sysextctl, the API): the record in state.json is the
// handover. While something is on probation it asks systemd about its units
// every probationPoll, without the lock; when a unit failed, a window
// ended or the host rebooted since a window opened, it takes the lock and
// lets the engine settle it (engine.CheckProbation: roll back and hold, or
// keep). With nothing on probation it sleeps in inotify on the state
// directory: no CPU while idle.
func (d *Daemon) watchProbation(ctx context.Context, cfg Config) {
	if !d.Root.IsHost() {
		return // no service manager to ask under --root
	}
	stateDir := d.Root.Path(rootfs.StateDir)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.Log.Warn("not watching probations: "+err.Error(), "err", err)
		return
	}
	defer w.Close()
	if err := w.Add(stateDir); err != nil {
		// No state directory yet: nothing was ever installed. Poll slowly
		// until there is one.
		d.Log.Debug("not watching the state directory yet", "err", err)
	}
	var um *units.Manager
	defer func() {
		if um != nil {
			um.Close()
		}
	}()
	for {
		if um == nil {
			if m, err := units.Connect(ctx); err == nil {
				um = m
			}
		}
		e := &engine.Engine{Root: d.Root, Log: d.Log}
		if um != nil {
			e.Units = um
		}
		due, any, err := e.ProbationDue(ctx)
		if err != nil && ctx.Err() == nil {
			d.Log.Warn("looking at the changes on probation failed: "+err.Error(), "err", err)
		}
		if due {
			d.settleProbation(ctx, cfg)
			continue
		}
		if !any && err == nil && um != nil {
			// Nothing left to watch: drop the D-Bus connection and hand
			// the memory of the watch back, as the check loop does.
			um.Close()
			um = nil
			debug.FreeOSMemory()
		}
		var tick <-chan time.Time
		switch {
		case any || err != nil:
			tick = time.After(probationPoll)
		case len(w.WatchList()) == 0:
			_ = w.Add(stateDir)
			tick = time.After(time.Minute)
		}
	wait:
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Base(ev.Name) != "state.json" {
				goto wait
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			d.Log.Warn("watching the state directory: "+err.Error(), "err", err)
		}
	}
}

// settleProbation runs the engine's probation check under the lock.
func (d *Daemon) settleProbation(ctx context.Context, cfg Config) {
	err := d.locked(ctx, func() error {
		a, err := d.build(ctx, cfg)
		if err != nil {
			return err
		}
		defer a.Close()
		if _, err := a.Engine.Recover(ctx); err != nil {
			return err
		}
		rep, err := a.Engine.CheckProbation(ctx, store.HistoryByDaemon)
		for _, r := range rep.Results {
			d.logResult(r)
		}
		return err
	})
	if err != nil && ctx.Err() == nil {
		d.Log.Error("settling a probation failed: "+err.Error(), "err", err)
		// Do not spin on a persistent failure.
		select {
		case <-ctx.Done():
		case <-time.After(minBackoff):
		}
	}
}

var _ engine.Units = (*units.Manager)(nil)
