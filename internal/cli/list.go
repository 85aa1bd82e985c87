package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/source"
)

func newListCmd(o *options) *cobra.Command {
	var refresh bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show every extension: status, versions, recommendation, update action",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.limitListMemory()
			e, err := o.newEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer e.close()
			opts := engine.ListOptions{Offline: o.offline}
			if refresh {
				opts.MaxAge = -1
			}
			items, info, err := e.eng.ListWith(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if items == nil {
				items = []engine.Item{} // `[]`, never `null`: jq '.[]' must work
			}
			if !o.json && !o.quiet {
				printAge(o.stderr, info, time.Now())
			}
			if o.json {
				if err := writeJSON(o.stdout, items); err != nil {
					return err
				}
			} else {
				printList(o.stdout, items)
			}
			if e.manifestErr != nil {
				return exitWith(ExitUsage, e.manifestErr)
			}
			return lookupExit(items)
		},
	}
	cmd.Flags().BoolVar(&o.offline, "offline", false, "use only cached release data (no network)")
	cmd.Flags().BoolVar(&refresh, "refresh", false, "check every release now, even when the last check is recent (default: trust a check younger than 1 h)")
	return cmd
}

// lookupExit is exit 4 when any available version could not be looked up
// because of the network or a rate limit.
func lookupExit(items []engine.Item) error {
	var errs []error
	for _, it := range items {
		err := it.LookupError()
		if err == nil {
			continue
		}
		if rl, ok := source.IsRateLimit(err); ok {
			return &exitError{code: ExitNetwork, hint: hintRateLimit,
				err: fmt.Errorf("GitHub rate limit reached; it resets at %s", rl.Reset.Local().Format("15:04:05 MST"))}
		}
		if source.IsNetwork(err) {
			errs = append(errs, fmt.Errorf("%s: %w", it.Name, err))
		}
	}
	if len(errs) > 0 {
		return &exitError{code: ExitNetwork, err: errors.Join(errs...), hint: hintNetwork}
	}
	return nil
}

// reportedOnStderr is the part of an item's problem that lookupExit prints
// as the command's error: a network or rate-limit lookup failure. It is left
// out under the table so that each error is printed once.
func reportedOnStderr(it engine.Item) string {
	err := it.LookupError()
	if _, rl := source.IsRateLimit(err); rl || source.IsNetwork(err) {
		return err.Error()
	}
	return ""
}

func printList(w io.Writer, items []engine.Item) {
	if len(items) == 0 {
		fmt.Fprintln(w, "no extensions: no manifest names one and none is installed")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXTENSION\tSTATUS\tINSTALLED\tAVAILABLE\tRECOMMENDED\tUPDATE")
	for _, it := range items {
		rec := "no"
		if it.Recommended {
			rec = "yes (" + strings.Join(it.Reasons, ", ") + ")"
		}
		if !it.Enabled && it.InManifest {
			rec += ", disabled"
		}
		upd := it.Update
		if it.RebootRequired {
			upd += " (reboot required)"
		}
		avail := dash(it.AvailableVersion)
		if it.AvailableBuildTime != "" && it.UpdateAvailable {
			avail += " (rebuilt " + it.AvailableBuildTime + ")"
		}
		if err := it.LookupError(); it.AvailableVersion == "" && err != nil && !errors.Is(err, source.ErrNotCached) {
			avail = "?"
		}
		if it.Unverified {
			avail += " (unverified)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Name, it.Status, dash(it.InstalledVersion), avail, rec, upd)
	}
	tw.Flush()
	for _, it := range items {
		if !it.ProbationUntil.IsZero() {
			fmt.Fprintf(w, "%s: %s\n", it.Name, probationLine(it.ProbationUntil))
		}
		if it.Rollout != "" && it.AvailableVersion != "" {
			// docs/fleet.md: what the release's verified release.json says.
			fmt.Fprintf(w, "%s: available %s is %s\n", it.Name, it.AvailableVersion, it.Rollout)
		}
		if it.Held && it.HoldReason != "" {
			fmt.Fprintf(w, "%s: held: %s\n", it.Name, it.HoldReason)
		}
		problem := it.Problem
		if dup := reportedOnStderr(it); dup != "" {
			problem = strings.TrimSuffix(strings.TrimSuffix(problem, dup), "; ")
		}
		if problem != "" {
			fmt.Fprintf(w, "%s: %s\n", it.Name, problem)
		}
	}
}

// probationLine says until when a change's units are watched before it
// is kept (engine/probation.go). A window that ended is settled by sysextd
// (or in a later boot): until then it is still unconfirmed.
func probationLine(until time.Time) string {
	at := until.Local().Format(time.DateTime + " MST")
	if time.Now().After(until) {
		return "probation ended " + at + ", not yet confirmed (sysextd confirms it, or rolls it back if a unit failed)"
	}
	return "on probation until " + at + " (rolled back if a unit fails)"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printAge says how old the release data is when it was not checked now.
func printAge(w io.Writer, info engine.ListInfo, now time.Time) {
	switch {
	case info.Checked:
	case info.CheckedAt.IsZero():
		fmt.Fprintln(w, "sysextctl: release data: never checked (list --refresh to check now)")
	default:
		fmt.Fprintf(w, "sysextctl: release data checked %s ago (list --refresh to check now)\n", now.Sub(info.CheckedAt).Round(time.Second))
	}
}

// listMemoryLimit is the Go runtime's soft memory limit for list. list is
// what operators and scripts run most, and a cold one looks up every
// extension at once: with the limit the GC works harder instead of letting
// the heap grow, which keeps a cold list of 100 under 20 MiB peak RSS
// (about 10 MiB of it are the binary's own pages) for about 15% more time
// (docs/PERFORMANCE.md). It is soft: a list that needs more gets more.
const listMemoryLimit = 12 << 20

// limitListMemory applies listMemoryLimit to the sysextctl process unless
// GOMEMLIMIT says otherwise.
func (o *options) limitListMemory() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && o.setMemoryLimit != nil {
		o.setMemoryLimit(listMemoryLimit)
	}
}
