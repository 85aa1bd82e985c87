// Package status is what `sysextctl status` and the API's Status answer:
// the daemon's status file (written by sysextd at every change of state,
// read by anyone), a pending reboot, holds, staged builds and the list.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/upgrade"
)

// File is the in-root path of the daemon's status, written
// atomically and world-readable at every change of state, so that
// `sysextctl status` shows it without privileges or D-Bus.
const File = rootfs.StateDir + "/daemon.json"

// States of the daemon, as written to File.
const (
	StateActivating  = "activating"       // start-up: recover, adopt, merge what is installed
	StateWaitLock    = "waiting-for-lock" // start-up waits for a sysextctl to finish
	StateStartFailed = "start-failed"     // start-up failed; retried at NextCheck
	StateChecking    = "checking"         // running auto
	StateIdle        = "idle"             // last check succeeded; next at NextCheck
	StateCheckFailed = "check-failed"     // last check failed; retried at NextCheck
	StateStopped     = "stopped"          // SIGTERM received
)

// Daemon is the content of File.
type Daemon struct {
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

// Write writes st to File atomically, mode 0644.
func Write(root rootfs.Root, st *Daemon) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding daemon status: %w", err)
	}
	return store.Store{Root: root}.WriteFile(File, append(data, '\n'), 0o644)
}

// Read reads File; (nil, nil) when the daemon never wrote one.
func Read(root rootfs.Root) (*Daemon, error) {
	data, err := os.ReadFile(root.Path(File))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading daemon status: %w", err)
	}
	var st Daemon
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parsing daemon status %s: %w", root.Path(File), err)
	}
	return &st, nil
}

// Running reports whether the process that wrote st still runs. It can
// tell only for the host's own root (under --root the PID is another
// system's) and answers true when it cannot tell.
func (st *Daemon) Running(root rootfs.Root) bool {
	if st.State == StateStopped {
		return false
	}
	if !root.IsHost() || st.PID <= 0 {
		return true
	}
	_, err := os.Stat("/proc/" + strconv.Itoa(st.PID))
	return err == nil
}

// Report is `sysextctl status --json` and the API's Status: the
// daemon, a pending reboot, holds, staged builds and the list (SPEC §10
// keeps `status` a superset of `list`).
type Report struct {
	Daemon *DaemonView `json:"daemon"` // null: sysextd never ran
	Reboot Reboot      `json:"reboot"`
	Holds  []Hold      `json:"holds"`
	// Staged are the builds waiting for the first boot of another OS
	// version (VERSION_ID -> images; internal/upgrade).
	Staged map[string][]string `json:"staged"`
	// ReleaseData says how old the release data the list was answered
	// from is: status answers from the cache unless asked to refresh.
	ReleaseData ReleaseData   `json:"release_data"`
	Extensions  []engine.Item `json:"extensions"`
}

// ReleaseData is the age of the release data behind a list.
type ReleaseData struct {
	// CheckedAt is when the oldest answer was checked online; absent when
	// nothing was ever checked. AgeSeconds is how long before the report.
	CheckedAt  *time.Time `json:"checked_at,omitempty"`
	AgeSeconds *int64     `json:"age_seconds,omitempty"`
	Refreshed  bool       `json:"refreshed"` // looked up online for this report
}

// DaemonView is the daemon's status file and whether it still runs.
type DaemonView struct {
	*Daemon
	Running bool `json:"running"`
}

// Hold is an extension update, auto and the daemon leave alone.
type Hold struct {
	Name   string `json:"name"`
	Pin    string `json:"pin,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Make builds the status under root. Without refresh it needs no
// network: the list comes from the cached release data. Problems reading
// the daemon's files are warnings; the error is the list's.
func Make(ctx context.Context, root rootfs.Root, e *engine.Engine, refresh bool, now time.Time) (*Report, []string, error) {
	var warns []string
	v := &Report{Holds: []Hold{}, Staged: map[string][]string{}}
	st, err := Read(root)
	if err != nil {
		warns = append(warns, err.Error())
	}
	if st != nil {
		v.Daemon = &DaemonView{Daemon: st, Running: st.Running(root)}
	}
	v.Reboot = PendingReboot(root)
	if h, err := readHolds(root); err != nil {
		warns = append(warns, err.Error())
	} else if h != nil {
		v.Holds = h
	}
	if s, err := upgrade.Waiting(root); err != nil {
		warns = append(warns, err.Error())
	} else if s != nil {
		v.Staged = s
	}
	opts := engine.ListOptions{Offline: !refresh}
	if refresh {
		opts.MaxAge = -1
	}
	items, info, err := e.ListWith(ctx, opts)
	if err != nil {
		return nil, warns, err
	}
	if items == nil {
		items = []engine.Item{} // `[]`, never `null`
	}
	v.Extensions = items
	v.ReleaseData.Refreshed = refresh
	if !info.CheckedAt.IsZero() {
		at := info.CheckedAt.UTC()
		age := int64(now.Sub(at) / time.Second)
		v.ReleaseData.CheckedAt, v.ReleaseData.AgeSeconds = &at, &age
	}
	return v, warns, nil
}

// readHolds reads the holds and pins from state.json. It decodes the keys
// itself so that it needs nothing but the file.
func readHolds(root rootfs.Root) ([]Hold, error) {
	path := store.Store{Root: root}.StatePath()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading holds: %w", err)
	}
	var st struct {
		Extensions map[string]struct {
			Hold       bool   `json:"hold"`
			HoldReason string `json:"hold_reason"`
			Pin        string `json:"pin"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("reading holds from %s: %w", path, err)
	}
	var out []Hold
	for n, r := range st.Extensions {
		if r.Hold || r.Pin != "" {
			out = append(out, Hold{Name: n, Pin: r.Pin, Reason: r.HoldReason})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
