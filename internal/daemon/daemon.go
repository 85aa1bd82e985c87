package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/status"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/upgrade"
)

// Daemon is one sysextd process.
type Daemon struct {
	Root   rootfs.Root
	Log    *slog.Logger
	Notify func(state string) // sd_notify; nil outside systemd
	Getenv func(string) string
	// Rebooter reboots the host; nil means never (a --root other than /).
	Rebooter func(ctx context.Context) error
	// Version is written to the status file (status.go).
	Version string

	status   status.Daemon // what status.File says (internal/status)
	statusMu sync.Mutex

	// cfg is the configuration in force, for API calls (api.go); hub
	// hands events to Watch.
	cfg atomic.Pointer[Config]
	hub *api.Hub

	lastGoodMu sync.Mutex
	lastGood   *manifest.Set
	lastErr    string        // the last failure, for STATUS=
	backoff    time.Duration // first retry delay; default minBackoff
	now        func() time.Time
	// counted is set once this process counted its start against the
	// unconfirmed changes (engine.CountBoot).
	counted bool
}

const (
	minBackoff = time.Minute
	debounce   = 2 * time.Second
)

// outcome is what a cycle tells the scheduler.
type outcome struct {
	failed    bool
	rateReset time.Time // non-zero when a rate limit was hit
}

// Run starts the daemon and returns when ctx ends (SIGTERM). With once, it
// activates, runs one auto cycle and returns.
func (d *Daemon) Run(ctx context.Context, once bool) error {
	if d.now == nil {
		d.now = time.Now
	}
	if d.Getenv == nil {
		d.Getenv = func(string) string { return "" }
	}
	cfg, err := LoadConfig(d.Root)
	if err != nil {
		d.Log.Error("bad configuration, using defaults: "+err.Error(), "err", err)
	}
	d.setConfig(cfg)
	d.hub = api.NewHub()
	if !once {
		d.serveAPI(ctx)
	}
	d.notify("STATUS=Activating installed extensions")
	d.report(status.StateActivating, time.Time{})
	// READY comes after the start-up activation, but never waits on the
	// lock for longer than readyLockWait: a stuck sysextctl must not hold
	// the boot. A start that failed is retried with the backoff below.
	started := d.tryStartup(ctx, cfg)
	d.notify("READY=1")
	// probation.go; a step it is settling finishes before Run returns.
	probationDone := make(chan struct{})
	if once {
		close(probationDone)
	} else {
		go func() {
			defer close(probationDone)
			d.watchProbation(ctx, cfg)
		}()
	}
	changed := d.watchManifests(ctx)
	failures := 0
	for {
		var out outcome
		if !started {
			started = d.tryStartup(ctx, cfg)
			out.failed = !started
		}
		if started {
			d.notify("STATUS=Checking for updates")
			d.report(status.StateChecking, time.Time{})
			out = d.cycle(ctx, cfg)
		}
		if once {
			if out.failed {
				d.report(status.StateCheckFailed, time.Time{})
				return errors.New("auto failed")
			}
			d.report(status.StateIdle, time.Time{})
			return nil
		}
		if out.failed {
			failures++
		} else {
			failures = 0
		}
		wait := d.nextWait(cfg, failures, out)
		nextAt := d.now().Add(wait)
		switch {
		case !started:
			d.notify("STATUS=Start failed: " + d.lastErr + "; retrying at " + nextAt.Format(time.RFC3339))
			d.report(status.StateStartFailed, nextAt)
		case out.failed:
			d.notify("STATUS=Last check failed: " + d.lastErr + "; retrying at " + nextAt.Format(time.RFC3339))
			d.report(status.StateCheckFailed, nextAt)
		default:
			d.notify("STATUS=Idle; next check at " + nextAt.Format(time.RFC3339))
			d.report(status.StateIdle, nextAt)
		}
		if started {
			d.checkFinished(ctx, out.failed)
		}
		d.Log.Info("next update check", "at", nextAt.Format(time.RFC3339), "failures", failures)
		// Hand the cycle's garbage back to the kernel: idle RSS is what an
		// appliance pays all day.
		debug.FreeOSMemory()
		rebootC := d.rebootTimer(ctx, cfg)
		timer := time.NewTimer(wait)
	wait:
		select {
		case <-ctx.Done():
			timer.Stop()
			d.notify("STOPPING=1")
			<-probationDone
			d.report(status.StateStopped, time.Time{})
			return nil
		case <-timer.C:
		case <-changed:
			timer.Stop()
			d.Log.Info("manifest changed: re-planning")
			cfg2, err := LoadConfig(d.Root)
			if err == nil {
				cfg = cfg2
				d.setConfig(cfg)
			}
		case <-rebootC:
			d.maybeReboot(ctx, cfg)
			rebootC = nil
			goto wait
		}
	}
}

// nextWait is the interval plus its random delay after a success, an
// exponential backoff capped at the interval after failures, and never
// before a rate limit resets.
func (d *Daemon) nextWait(cfg Config, failures int, out outcome) time.Duration {
	interval := cfg.Interval.Duration
	if failures == 0 {
		wait := interval
		if cfg.RandomizedDelay.Duration > 0 {
			wait += time.Duration(rand.Int64N(int64(cfg.RandomizedDelay.Duration)))
		}
		return wait
	}
	base := d.backoff
	if base == 0 {
		base = minBackoff
	}
	wait := base << min(failures-1, 20)
	if wait > interval {
		wait = interval
	}
	if !out.rateReset.IsZero() {
		if until := out.rateReset.Sub(d.now()) + time.Duration(rand.Int64N(int64(time.Minute))); until > wait {
			wait = until
		}
	}
	return wait
}

func (d *Daemon) notify(state string) {
	if d.Notify != nil {
		d.Notify(state)
	}
}

// setConfig makes cfg the configuration API calls see.
func (d *Daemon) setConfig(cfg Config) { d.cfg.Store(&cfg) }

// config is the configuration in force.
func (d *Daemon) config() Config {
	if c := d.cfg.Load(); c != nil {
		return *c
	}
	return DefaultConfig()
}

// build wires one run. A broken manifest falls back to the last good set.
func (d *Daemon) build(ctx context.Context, cfg Config) (*app.App, error) {
	return d.buildWith(ctx, cfg, nil)
}

// buildWith is build with a listener for download bytes (the API).
func (d *Daemon) buildWith(ctx context.Context, cfg Config, onProgress func(string, int64, int64)) (*app.App, error) {
	ac, err := d.appConfig(cfg, onProgress)
	if err != nil {
		return nil, err
	}
	return app.New(ctx, ac)
}

// appConfig is what build hands app.New.
func (d *Daemon) appConfig(cfg Config, onProgress func(string, int64, int64)) (app.Config, error) {
	token, err := app.Token(cfg.TokenFile, d.Getenv)
	if err != nil {
		d.Log.Warn("no GitHub token: "+err.Error(), "err", err)
	}
	api := cfg.GitHubAPI
	if api == "" {
		api = d.Getenv("SYSEXT_GITHUB_API")
	}
	set, warnings, merr := manifest.Load(d.Root)
	for _, w := range warnings {
		d.Log.Warn(w.String())
	}
	d.lastGoodMu.Lock()
	if merr != nil {
		if d.lastGood == nil {
			d.lastGoodMu.Unlock()
			return app.Config{}, fmt.Errorf("no usable manifest yet: %w", merr)
		}
		d.Log.Error("manifest broken, keeping the last good configuration: "+merr.Error(), "err", merr)
		set = d.lastGood
	} else {
		d.lastGood = set
	}
	d.lastGoodMu.Unlock()
	srcs := cfg.sources()
	// A broken auth.conf costs only the mirrors that need a login, never
	// the rest of the run.
	auth, warns, err := app.LoadAuth(d.Root)
	for _, w := range warns {
		d.Log.Warn(w)
	}
	if err != nil {
		d.Log.Error("mirror logins not loaded, mirrors that need one will refuse: "+err.Error(), "err", err)
	}
	srcs.Auth = auth
	logins, warns, err := app.LoadRegistryLogins(d.Root, d.Getenv, false)
	for _, w := range warns {
		d.Log.Warn(w)
	}
	if err != nil {
		d.Log.Error("registry logins not loaded, registries that need one will refuse: "+err.Error(), "err", err)
	}
	srcs.Logins = logins
	return app.Config{Root: d.Root, GitHubAPI: api, Token: token, MaxSize: cfg.MaxSize, Logger: d.Log, Manifests: set, Sources: srcs,
		OnProgress: onProgress}, nil
}

// locked runs fn with the mutation lock held; the lock is never held
// between cycles.
func (d *Daemon) locked(ctx context.Context, fn func() error) error {
	release, err := store.Store{Root: d.Root}.Lock(ctx, true, func() {
		d.Log.Info("waiting for sysextctl to finish")
	})
	if err != nil {
		return err
	}
	defer release()
	return fn()
}

// readyLockWait bounds how long start-up waits for the lock before READY.
const readyLockWait = 20 * time.Second

// tryStartup runs startup and reports whether it succeeded; a failure is
// logged with its reason in the message and kept for STATUS=.
func (d *Daemon) tryStartup(ctx context.Context, cfg Config) bool {
	err := d.startup(ctx, cfg)
	if err == nil {
		return true
	}
	if ctx.Err() == nil {
		d.lastErr = err.Error()
		d.Log.Error("activating installed extensions failed: "+err.Error(), "err", err)
	}
	return false
}

// startup undoes an interrupted step, adopts sysext.pl leftovers and makes
// sure what is installed is merged and its units run. It needs no network.
func (d *Daemon) startup(ctx context.Context, cfg Config) error {
	lockCtx, cancel := context.WithTimeout(ctx, readyLockWait)
	defer cancel()
	release, err := store.Store{Root: d.Root}.Lock(lockCtx, true, func() {
		d.notify("STATUS=Waiting for the lock " + store.Store{Root: d.Root}.LockPath() + " (another sysextctl is changing extensions)")
		d.report(status.StateWaitLock, time.Time{})
		d.Log.Info("waiting for sysextctl to finish")
	})
	if err != nil {
		return err
	}
	defer release()
	// Boot assessment (engine/boot.go): this start counts against every
	// unconfirmed change first, before anything that could die or merge;
	// the first start in a boot the boot check counted counts nothing. A
	// start-up retried by the same process is not another start.
	if !d.counted {
		tries, err := (&engine.Engine{Root: d.Root, Log: d.Log}).CountBoot()
		if err != nil {
			d.Log.Error("counting this start against unconfirmed changes failed: "+err.Error(), "err", err)
		}
		d.counted = err == nil
		for name, n := range tries {
			d.Log.Warn(fmt.Sprintf("%s: start %d with its change unconfirmed (boot_tries %d)", name, n, cfg.sources().ProbationConfig().BootTriesOrDefault()), "extension", name)
		}
	}
	return func() error {
		a, err := d.build(ctx, cfg)
		if err != nil {
			// Without a manifest the installed images still get merged.
			a, err = app.New(ctx, app.Config{Root: d.Root, Logger: d.Log, Manifests: &manifest.Set{Entries: map[string]*manifest.Entry{}}})
			if err != nil {
				return err
			}
		}
		defer a.Close()
		return a.Engine.Start(ctx, engine.StartOptions{
			Boot: true,
			OnRecovered: func(rec engine.Recovery, err error) {
				if err == nil && rec.Undone != nil {
					d.Log.Warn(fmt.Sprintf("undid the interrupted %s of %s", rec.Undone.Op, rec.Undone.Name), "extension", rec.Undone.Name)
				}
				// Changes that too many starts found unconfirmed go back,
				// offline, before the merge (engine/boot.go).
				if err == nil {
					for _, r := range a.Engine.UndoUnconfirmed(ctx, store.HistoryByDaemon) {
						d.logResult(r)
					}
				}
			},
			// Builds fetched for this OS before an upgrade go in first: no
			// network is needed, and the extensions keep working across it.
			OnStaged: func(staged []engine.Result) {
				for _, r := range staged {
					d.logResult(r)
				}
				a.Engine.RecordHistory("activate-staged", store.HistoryByDaemon, staged)
			},
			OnAdopted: func(ad engine.Adoption) {
				if len(ad.Adopted) > 0 {
					d.Log.Info("adopted sysext.pl images: " + strings.Join(ad.Adopted, " "))
				}
			},
		})
	}()
}

// cycle runs auto once.
func (d *Daemon) cycle(ctx context.Context, cfg Config) outcome {
	var out outcome
	err := d.locked(ctx, func() error {
		a, err := d.build(ctx, cfg)
		if err != nil {
			return err
		}
		defer a.Close()
		if _, err := a.Engine.Recover(ctx); err != nil {
			return err
		}
		plan, err := a.Engine.MakePlan(ctx, engine.VerbAuto, nil)
		if err != nil {
			return err
		}
		for _, w := range plan.Warnings {
			d.Log.Warn(w)
		}
		results := a.Engine.Apply(ctx, plan)
		a.Engine.RecordHistory(plan.Verb, store.HistoryByDaemon, results)
		d.prefetchStaged(ctx, a)
		for _, r := range results {
			d.logResult(r)
			if rl, ok := source.IsRateLimit(r.Err()); ok && rl.Reset.After(out.rateReset) {
				out.rateReset = rl.Reset
			}
		}
		if _, bad, _ := engine.Summary(results); bad > 0 {
			return fmt.Errorf("%d extension(s) failed", bad)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			d.lastErr = err.Error()
			d.Log.Error("auto failed: "+err.Error(), "err", err)
		}
		out.failed = true
	}
	return out
}

func (d *Daemon) logResult(r engine.Result) {
	attrs := []any{"extension", r.Name, "action", string(r.Op)}
	if r.To != "" {
		attrs = append(attrs, "version", r.To)
	}
	if r.Action != "" {
		attrs = append(attrs, "update_action", r.Action)
	}
	switch {
	case !r.OK:
		d.Log.Error(r.Error, attrs...)
	case r.Op == engine.OpNone:
		d.Log.Debug(r.Message, attrs...)
	default:
		d.Log.Info(r.Message, attrs...)
	}
}

// prefetchStaged fetches the builds for the OS bootc has staged for the
// next boot, when it differs from the booted one (docs/upgrades.md).
func (d *Daemon) prefetchStaged(ctx context.Context, a *app.App) {
	s, err := upgrade.Staged(ctx, d.Root)
	if err != nil {
		d.Log.Warn("reading the staged deployment failed: "+err.Error(), "err", err)
		return
	}
	booted := a.Engine.Facts.OS
	if s == nil || upgrade.SameKey(s.OS, booted) {
		return
	}
	d.Log.Info(fmt.Sprintf("bootc staged %s %s (%s): fetching its builds", s.ID, s.VersionID, s.VersionCodename))
	for _, r := range a.Engine.PrefetchStaged(ctx, s) {
		if r.OK {
			d.Log.Info(r.Message, "extension", r.Name, "version", r.To)
		} else {
			d.Log.Error(r.Error, "extension", r.Name)
		}
	}
}
