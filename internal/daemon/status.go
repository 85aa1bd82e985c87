package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// StatusFile is the in-root path of the daemon's status, written
// atomically and world-readable at every change of state, so that
// `sysextctl status` shows it without privileges or D-Bus.
const StatusFile = rootfs.StateDir + "/daemon.json"

// States of the daemon, as written to StatusFile.
const (
	StateActivating  = "activating"       // start-up: recover, adopt, merge what is installed
	StateWaitLock    = "waiting-for-lock" // start-up waits for a sysextctl to finish
	StateStartFailed = "start-failed"     // start-up failed; retried at NextCheck
	StateChecking    = "checking"         // running auto
	StateIdle        = "idle"             // last check succeeded; next at NextCheck
	StateCheckFailed = "check-failed"     // last check failed; retried at NextCheck
	StateStopped     = "stopped"          // SIGTERM received
)

// Status is the content of StatusFile.
type Status struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"` // when this process started
	UpdatedAt time.Time `json:"updated_at"`
	State     string    `json:"state"`
	// Started is true once the start-up activation succeeded.
	Started bool `json:"started"`
	// LastCheck is when the last update check ended, LastCheckOK whether
	// it succeeded.
	LastCheck   *time.Time `json:"last_check,omitempty"`
	LastCheckOK bool       `json:"last_check_ok"`
	NextCheck   *time.Time `json:"next_check,omitempty"`
	// LastError is the text of the last failure (start-up or check) and
	// LastErrorAt when it happened; they stay after a later success, so
	// that an operator sees what went wrong overnight.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	Reboot      Reboot     `json:"reboot"`
}

// Reboot is a pending reboot our extensions asked for.
type Reboot struct {
	Required bool `json:"required"`
	// Extensions are the installed extensions whose update action asked
	// for it (/run/reboot-required.pkgs); Reason says it for people.
	Extensions []string `json:"extensions,omitempty"`
	Reason     string   `json:"reason,omitempty"`
}

// PendingReboot reads the reboot-required convention under root and keeps
// the names of installed extensions in it. Unprivileged callers get the
// same answer: every file it reads is world-readable.
func PendingReboot(root rootfs.Root) Reboot {
	pending := store.RebootPending(root)
	if len(pending) == 0 {
		return Reboot{}
	}
	st, err := store.Store{Root: root}.LoadState()
	if err != nil {
		return Reboot{}
	}
	var names []string
	for n := range st.Extensions {
		if pending[n] {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return Reboot{}
	}
	sort.Strings(names)
	reason := "the update of " + names[0]
	for i, n := range names[1:] {
		if i == len(names)-2 {
			reason += " and " + n
		} else {
			reason += ", " + n
		}
	}
	return Reboot{Required: true, Extensions: names, Reason: reason + " requires it"}
}

// report records the daemon's new state and writes StatusFile. next is
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
	case StateChecking:
		st.Started = true
	case StateIdle, StateCheckFailed:
		st.LastCheck, st.LastCheckOK = &now, state == StateIdle
	}
	if state == StateStartFailed || state == StateCheckFailed {
		st.LastError, st.LastErrorAt = d.lastErr, &now
	}
	st.NextCheck = nil
	if !next.IsZero() {
		st.NextCheck = &next
	}
	st.Reboot = PendingReboot(d.Root)
	if err := WriteStatus(d.Root, st); err != nil {
		d.Log.Warn("writing the daemon status failed: "+err.Error(), "err", err)
	}
}

// WriteStatus writes st to StatusFile atomically, mode 0644.
func WriteStatus(root rootfs.Root, st *Status) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding daemon status: %w", err)
	}
	return store.Store{Root: root}.WriteFile(StatusFile, append(data, '\n'), 0o644)
}

// ReadStatus reads StatusFile; (nil, nil) when the daemon never wrote one.
func ReadStatus(root rootfs.Root) (*Status, error) {
	data, err := os.ReadFile(root.Path(StatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading daemon status: %w", err)
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parsing daemon status %s: %w", root.Path(StatusFile), err)
	}
	return &st, nil
}

// Running reports whether the process that wrote st still runs. It can
// tell only for the host's own root (under --root the PID is another
// system's) and answers true when it cannot tell.
func (st *Status) Running(root rootfs.Root) bool {
	if st.State == StateStopped {
		return false
	}
	if !root.IsHost() || st.PID <= 0 {
		return true
	}
	_, err := os.Stat("/proc/" + strconv.Itoa(st.PID))
	return err == nil
}
