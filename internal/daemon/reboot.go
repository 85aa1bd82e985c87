package daemon

import (
	"context"
	"time"

	"github.com/spamtagger/sysextd/internal/store"
)

// rebootPending reports whether one of our extensions asked for a reboot
// that has not happened yet.
func (d *Daemon) rebootPending() bool {
	st, err := store.Store{Root: d.Root}.LoadState()
	if err != nil {
		return false
	}
	pending := store.RebootPending(d.Root)
	for _, r := range st.Extensions {
		if pending[r.Name] {
			return true
		}
	}
	return false
}

// rebootTimer fires at the next reboot window when a reboot is allowed and
// pending; otherwise it never fires.
func (d *Daemon) rebootTimer(ctx context.Context, cfg Config) <-chan time.Time {
	if !cfg.Reboot || d.Rebooter == nil || cfg.window == nil || !d.rebootPending() {
		return nil
	}
	now := d.now()
	return time.After(cfg.window.next(now).Sub(now))
}

func (d *Daemon) maybeReboot(ctx context.Context, cfg Config) {
	if !cfg.Reboot || d.Rebooter == nil || !d.rebootPending() || !cfg.window.contains(d.now()) {
		return
	}
	d.Log.Warn("rebooting: an extension update requires it", "action", "reboot")
	if err := d.Rebooter(ctx); err != nil {
		d.Log.Error("reboot failed: "+err.Error(), "err", err)
	}
}
