package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/store"
)

// BootCheck is `sysextd -boot-check`, the whole of
// sysextd-boot-check.service: early in the boot, before
// systemd-sysext.service merges and before D-Bus, it counts this boot
// against every unconfirmed change (written and fsynced), undoes an
// interrupted step, and puts back the previous image of every change that
// ran out of boot_tries, holding it (engine/boot.go). It merges nothing
// and touches no unit: systemd-sysext.service merges right after, and the
// daemon starts the units. It needs no network. The unit runs only while
// rootfs.UnconfirmedMarker exists, so a normal boot never starts it.
func (d *Daemon) BootCheck(ctx context.Context) error {
	cfg, err := LoadConfig(d.Root)
	if err != nil {
		d.Log.Error("bad configuration, using defaults: "+err.Error(), "err", err)
	}
	st := store.Store{Root: d.Root}
	release, err := st.Lock(ctx, true, func() { d.Log.Info("waiting for the lock " + st.LockPath()) })
	if err != nil {
		return err
	}
	defer release()
	pc := cfg.sources().ProbationConfig()
	bare := &engine.Engine{Root: d.Root, Log: d.Log, Probation: pc, BeforeMerge: true}
	tries, err := bare.CountBootBeforeMerge()
	if err != nil {
		return fmt.Errorf("counting this boot against unconfirmed changes: %w", err)
	}
	max, due := pc.BootTriesOrDefault(), false
	names := make([]string, 0, len(tries))
	for n := range tries {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		d.Log.Warn(fmt.Sprintf("%s: boot %d with its change unconfirmed (boot_tries %d)", name, tries[name], max), "extension", name)
		due = due || tries[name] > max
	}
	// Offline: no merge and no unit (Sysext and Units are nil); the
	// daemon starts the units of what is installed once it runs.
	rec, err := bare.Recover(ctx)
	if err != nil {
		return err
	}
	if rec.Undone != nil {
		d.Log.Warn(fmt.Sprintf("undid the interrupted %s of %s", rec.Undone.Op, rec.Undone.Name), "extension", rec.Undone.Name)
	}
	if !due {
		return nil
	}
	ac, err := d.appConfig(cfg, nil)
	if err != nil {
		// Without a manifest the kept previous image still goes back.
		d.Log.Error("undoing unconfirmed changes without the manifests: "+err.Error(), "err", err)
		ac = app.Config{Root: d.Root, Logger: d.Log, Manifests: &manifest.Set{Entries: map[string]*manifest.Entry{}}, Sources: cfg.sources()}
	}
	ac.NoServiceManager = true
	a, err := app.New(ctx, ac)
	if err != nil {
		return err
	}
	defer a.Close()
	a.Engine.Sysext, a.Engine.Units, a.Engine.BeforeMerge = nil, nil, true
	var errs []error
	for _, r := range a.Engine.UndoUnconfirmed(ctx, store.HistoryByDaemon) {
		d.logResult(r)
		if !r.OK {
			errs = append(errs, r.Err())
		}
	}
	return errors.Join(errs...)
}
