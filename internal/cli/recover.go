package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
)

// newRecoverCmd is `sysextctl recover`: what every mutating verb and the
// daemon's start do first, on its own. It needs no network.
func newRecoverCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "recover",
		Short: "Undo a change that was interrupted (crash, kill, power loss) and clear leftovers",
		Long: "recover undoes a step that a crash, kill or power loss interrupted: the previous images are put\n" +
			"back from their backups, what is installed is merged again and the units the step touched run again\n" +
			"on the previous version. Partial downloads and leftover backups are removed. Every mutating verb and\n" +
			"sysextd's start do this first; it needs no network.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if c, ok := o.daemon(ctx); ok {
				defer c.Close()
				var out struct {
					Recovery engine.Recovery `json:"recovery"`
				}
				if err := o.call(ctx, c, "Recover", nil, &out, nil); err != nil {
					return err
				}
				return o.printRecovery(out.Recovery, nil)
			}
			e, err := o.newEnv(ctx)
			if err != nil {
				return err
			}
			defer e.close()
			release, err := e.eng.Lock(ctx, !o.noBlock, func() {
				fmt.Fprintln(o.stderr, "sysextctl: waiting for another sysextctl or sysextd to finish...")
			})
			if err != nil {
				return exitWith(ExitFailure, err)
			}
			defer release()
			rec, err := e.eng.Recover(ctx)
			return o.printRecovery(rec, err)
		},
	}
}

// printRecovery prints what recover did (or would have, when err).
func (o *options) printRecovery(rec engine.Recovery, err error) error {
	if o.json {
		if jerr := writeJSON(o.stdout, rec); jerr != nil {
			return jerr
		}
	} else if !o.quiet {
		if rec.Undone != nil {
			fmt.Fprintf(o.stdout, "undid the interrupted %s of %s\n", rec.Undone.Op, rec.Undone.Name)
		}
		for _, p := range rec.Removed {
			fmt.Fprintf(o.stdout, "removed leftover %s\n", p)
		}
		if rec.Undone == nil && len(rec.Removed) == 0 && err == nil {
			fmt.Fprintln(o.stdout, "nothing to recover")
		}
	}
	if err != nil {
		return exitWith(ExitFailure, err)
	}
	return nil
}
