package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/status"
)

func newStatusCmd(o *options) *cobra.Command {
	var refresh bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's last and next check, a pending reboot and holds, then the list",
		Long: "status answers from what sysextd and earlier commands know, with no network: the list\n" +
			"comes from the cached release data, whose age it states. --refresh looks every release up now.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c, ok := o.daemon(cmd.Context()); ok {
				defer c.Close()
				return o.clientStatus(cmd.Context(), c, refresh)
			}
			e, err := o.newEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer e.close()
			v, warns, err := status.Make(cmd.Context(), e.root, e.eng, refresh, time.Now())
			for _, w := range warns {
				fmt.Fprintln(o.stderr, "sysextctl: warning:", w)
			}
			if err != nil {
				return err
			}
			failures := engine.NetworkFailures(v.Extensions)
			if err := o.printStatus(v, failures); err != nil {
				return err
			}
			if e.manifestErr != nil {
				return exitWith(ExitUsage, e.manifestErr)
			}
			return lookupExit(failures)
		},
	}
	cmd.Flags().BoolVar(&o.offline, "offline", false, "use only cached release data (no network); the default, kept for scripts")
	cmd.Flags().BoolVar(&refresh, "refresh", false, "look every release up online now")
	return cmd
}

// printStatus prints a status report as JSON or as the header and list;
// failures are its lookups the network or a rate limit failed.
func (o *options) printStatus(v *status.Report, failures []engine.LookupFailure) error {
	if o.json {
		return writeJSON(o.stdout, v)
	}
	printStatusHeader(o.stdout, v)
	printList(o.stdout, v.Extensions, failures)
	return nil
}

func printStatusHeader(w io.Writer, v *status.Report) {
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
	switch rd := v.ReleaseData; {
	case rd.Refreshed:
	case rd.CheckedAt == nil || rd.AgeSeconds == nil:
		fmt.Fprintln(w, "Releases: never checked (status --refresh to check now)")
	default:
		fmt.Fprintf(w, "Releases: checked %s ago (status --refresh to check now)\n", time.Duration(*rd.AgeSeconds)*time.Second)
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
