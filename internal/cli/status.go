package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/daemon"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/upgrade"
)

// statusView is `status --json`: the daemon, a pending reboot, holds, and
// the list (SPEC §10 keeps `status` a superset of `list`).
type statusView struct {
	Daemon *daemonView   `json:"daemon"` // null: sysextd never ran
	Reboot daemon.Reboot `json:"reboot"`
	Holds  []hold        `json:"holds"`
	// Staged are the builds waiting for the first boot of another OS
	// version (VERSION_ID -> images; internal/upgrade).
	Staged     map[string][]string `json:"staged"`
	Extensions []engine.Item       `json:"extensions"`
}

type daemonView struct {
	*daemon.Status
	Running bool `json:"running"`
}

// hold is an extension update, auto and the daemon leave alone.
type hold struct {
	Name   string `json:"name"`
	Pin    string `json:"pin,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func newStatusCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's last and next check, a pending reboot and holds, then the list",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root := rootfs.New(o.root)
			var v statusView
			st, err := daemon.ReadStatus(root)
			if err != nil {
				fmt.Fprintln(o.stderr, "sysextctl: warning:", err)
			}
			if st != nil {
				v.Daemon = &daemonView{Status: st, Running: st.Running(root)}
			}
			v.Reboot = daemon.PendingReboot(root)
			if v.Holds, err = readHolds(root); err != nil {
				fmt.Fprintln(o.stderr, "sysextctl: warning:", err)
			}
			if v.Staged, err = upgrade.Waiting(root); err != nil {
				fmt.Fprintln(o.stderr, "sysextctl: warning:", err)
			}
			e, err := o.newEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer e.close()
			if v.Extensions, err = e.eng.List(cmd.Context(), o.offline); err != nil {
				return err
			}
			if v.Extensions == nil {
				v.Extensions = []engine.Item{} // `[]`, never `null`
			}
			if o.json {
				if v.Holds == nil {
					v.Holds = []hold{}
				}
				if v.Staged == nil {
					v.Staged = map[string][]string{}
				}
				if err := writeJSON(o.stdout, v); err != nil {
					return err
				}
			} else {
				printStatusHeader(o.stdout, v)
				printList(o.stdout, v.Extensions)
			}
			if e.manifestErr != nil {
				return exitWith(ExitUsage, e.manifestErr)
			}
			return lookupExit(v.Extensions)
		},
	}
	cmd.Flags().BoolVar(&o.offline, "offline", false, "use only cached release data (no network)")
	return cmd
}

// readHolds reads the holds and pins from state.json. It decodes the keys
// itself so that it needs nothing but the file (TODO(lead): use
// store.Record's Hold, HoldReason and Pin once they are merged).
func readHolds(root rootfs.Root) ([]hold, error) {
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
	var out []hold
	for n, r := range st.Extensions {
		if r.Hold || r.Pin != "" {
			out = append(out, hold{Name: n, Pin: r.Pin, Reason: r.HoldReason})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func printStatusHeader(w io.Writer, v statusView) {
	at := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.Local().Format("2006-01-02 15:04")
	}
	switch d := v.Daemon; {
	case d == nil:
		fmt.Fprintln(w, "Daemon:  no status (sysextd has not run)")
	default:
		state := d.State
		if !d.Running {
			state = "not running (last: " + d.State + ")"
		}
		check := "last check " + at(d.LastCheck)
		if d.LastCheck != nil && !d.LastCheckOK {
			check += " (failed)"
		}
		if d.NextCheck != nil && d.Running {
			check += ", next " + at(d.NextCheck)
		}
		fmt.Fprintf(w, "Daemon:  %s, %s\n", state, check)
		if d.LastError != "" {
			fmt.Fprintf(w, "         last error at %s: %s\n", at(d.LastErrorAt), d.LastError)
		}
	}
	if v.Reboot.Required {
		fmt.Fprintf(w, "Reboot:  required: %s\n", v.Reboot.Reason)
	}
	for _, h := range v.Holds {
		s := h.Name
		if h.Pin != "" {
			s += " pinned to " + h.Pin
		}
		if h.Reason != "" {
			s += " (" + h.Reason + ")"
		}
		fmt.Fprintf(w, "Held:    %s\n", s)
	}
	vers := make([]string, 0, len(v.Staged))
	for ver := range v.Staged {
		vers = append(vers, ver)
	}
	sort.Strings(vers)
	for _, ver := range vers {
		fmt.Fprintf(w, "Staged:  for OS version %s, at its first boot: %s\n", ver, strings.Join(v.Staged[ver], ", "))
	}
	fmt.Fprintln(w)
}
