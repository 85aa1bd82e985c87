package daemon

import (
	"os"
	"time"

	"github.com/spamtagger/sysextd/internal/status"
)

// report records the daemon's new state and writes status.File. next is
// the next check (zero: none scheduled). Call it wherever STATUS= is sent.
// A failed write is logged, never fatal: the status is for people.
func (d *Daemon) report(state string, next time.Time) {
	now := d.now()
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	st := &d.status
	if st.StartedAt.IsZero() {
		st.StartedAt, st.PID, st.Version = now, os.Getpid(), d.Version
	}
	st.State, st.UpdatedAt = state, now
	switch state {
	case status.StateChecking:
		st.Started = true
	case status.StateIdle, status.StateCheckFailed:
		st.LastCheck, st.LastCheckOK = &now, state == status.StateIdle
	}
	if state == status.StateStartFailed || state == status.StateCheckFailed {
		st.LastError, st.LastErrorAt = d.lastErr, &now
	}
	st.NextCheck = nil
	if !next.IsZero() {
		st.NextCheck = &next
	}
	st.Reboot = status.PendingReboot(d.Root)
	if err := status.Write(d.Root, st); err != nil {
		d.Log.Warn("writing the daemon status failed: "+err.Error(), "err", err)
	}
}
