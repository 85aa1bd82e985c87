package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/upgrade"
)

// StatusReport is `sysextctl status --json` and the API's Status: the
// daemon, a pending reboot, holds, staged builds and the list (SPEC §10
// keeps `status` a superset of `list`).
type StatusReport struct {
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
	*Status
	Running bool `json:"running"`
}

// Hold is an extension update, auto and the daemon leave alone.
type Hold struct {
	Name   string `json:"name"`
	Pin    string `json:"pin,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Report builds the status under root. Without refresh it needs no
// network: the list comes from the cached release data. Problems reading
// the daemon's files are warnings; the error is the list's.
func Report(ctx context.Context, root rootfs.Root, e *engine.Engine, refresh bool, now time.Time) (*StatusReport, []string, error) {
	var warns []string
	v := &StatusReport{Holds: []Hold{}, Staged: map[string][]string{}}
	st, err := ReadStatus(root)
	if err != nil {
		warns = append(warns, err.Error())
	}
	if st != nil {
		v.Daemon = &DaemonView{Status: st, Running: st.Running(root)}
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
