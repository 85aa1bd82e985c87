package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/status"
	"github.com/spamtagger/sysextd/internal/store"
)

// listenAPI returns the API's listener: the socket sysextd.socket passed
// (LISTEN_FDS), or, started without it, a socket it makes itself at
// api.Socket under the root, mode 0666: every local user may read, and the
// methods check who may change (internal/api).
func (d *Daemon) listenAPI() (net.Listener, error) {
	ls, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("reading the sockets systemd passed: %w", err)
	}
	for _, l := range ls {
		if l != nil {
			return l, nil
		}
	}
	path := d.Root.Path(api.Socket)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing a stale %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, fmt.Errorf("opening %s to every user: %w", path, err)
	}
	return l, nil
}

// apiServer is the daemon's io.spamtagger.Sysext: each call builds its
// engine from the configuration in force, and every change rewrites the
// metrics textfile.
func (d *Daemon) apiServer() *api.Server {
	return &api.Server{
		Root: d.Root,
		Log:  d.Log,
		Hub:  d.hub,
		Open: func(ctx context.Context, onProgress func(string, int64, int64)) (*api.Session, error) {
			a, err := d.buildWith(ctx, d.config(), onProgress)
			if err != nil {
				// A broken manifest with no last good one: reads still
				// answer about what is installed; changes are refused.
				a2, err2 := app.New(ctx, app.Config{Root: d.Root, Logger: d.Log, Manifests: &manifest.Set{Entries: map[string]*manifest.Entry{}}})
				if err2 != nil {
					return nil, err
				}
				return &api.Session{Engine: a2.Engine, ManifestErr: err, Close: a2.Close}, nil
			}
			return &api.Session{Engine: a.Engine, ManifestErr: nil, Close: a.Close}, nil
		},
		// Read at each changing call: a change to admin_group applies at
		// once, and a broken file keeps the configuration in force.
		AdminGroup: func() string {
			if cfg, err := LoadConfig(d.Root); err == nil {
				return cfg.AdminGroup
			}
			return d.config().AdminGroup
		},
		Status: func(ctx context.Context, s *api.Session, refresh bool) (*status.Report, error) {
			v, warns, err := status.Make(ctx, d.Root, s.Engine, refresh, d.now())
			for _, w := range warns {
				d.Log.Warn("status: " + w)
			}
			return v, err
		},
		Changed: func(ctx context.Context, s *api.Session) { d.writeMetrics(ctx, s.Engine) },
	}
}

// serveAPI serves the API until ctx ends. It also tails the history, so
// that Watch and the metrics hear changes made by sysextctl --root or an
// older sysextctl as well. A socket that cannot be opened is logged: the
// daemon's own work goes on without it.
func (d *Daemon) serveAPI(ctx context.Context) {
	go func() {
		err := d.hub.TailHistory(ctx, d.Root, d.Log, func([]store.HistoryEntry) { d.metricsFromScratch(ctx) })
		if err != nil {
			d.Log.Error("not watching the history: "+err.Error(), "err", err)
		}
	}()
	l, err := d.listenAPI()
	if err != nil {
		d.Log.Error("not serving the API: "+err.Error(), "err", err)
		return
	}
	go func() {
		if err := d.apiServer().Serve(ctx, l); err != nil {
			d.Log.Error("the API stopped: "+err.Error(), "err", err)
		}
	}()
}

// metricsFromScratch rewrites the metrics with an engine of its own, for
// a change the daemon heard of rather than made.
// Nothing is built when node-exporter is not installed, and the memory is
// handed back after: this runs while the daemon is otherwise idle.
func (d *Daemon) metricsFromScratch(ctx context.Context) {
	if !d.metricsWanted() {
		return
	}
	defer debug.FreeOSMemory()
	a, err := d.buildWith(ctx, d.config(), nil)
	if err != nil {
		d.Log.Warn("writing metrics: "+err.Error(), "err", err)
		return
	}
	defer a.Close()
	d.writeMetrics(ctx, a.Engine)
}

// checkFinished tells watchers and the metrics that a check ended; the
// status (last check) is reported first.
func (d *Daemon) checkFinished(ctx context.Context, failed bool) {
	ok := !failed
	ev := api.Event{Kind: api.EventCheckFinished, Time: d.now().UTC(), By: store.HistoryByDaemon, OK: &ok}
	if failed {
		ev.Error = d.lastErr
	}
	d.hub.Publish(ev)
	d.metricsFromScratch(ctx)
}
