package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

func newHistoryCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "history [NAME]",
		Short: "Show every change made to extensions (oldest first), by the CLI or the daemon",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			entries, warnings, err := engine.ReadHistory(rootfs.New(o.root), name)
			if err != nil {
				return exitWith(ExitFailure, err)
			}
			for _, w := range warnings {
				fmt.Fprintln(o.stderr, "sysextctl: warning:", w)
			}
			if o.json {
				if entries == nil {
					entries = []engine.HistoryRecord{}
				}
				return writeJSON(o.stdout, entries)
			}
			printHistory(o.stdout, entries)
			return nil
		},
	}
}

func printHistory(w io.Writer, entries []engine.HistoryRecord) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEXTENSION\tVERB\tBY\tOP\tFROM\tTO\tRESULT\tDETAIL")
	for _, e := range entries {
		detail := e.Reason
		if e.Error != "" {
			if e.Phase != "" {
				detail = e.Phase + ": " + e.Error
			} else {
				detail = e.Error
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"),
			e.Name, e.Verb, e.By, e.Op, dash(e.From), dash(e.To), e.Result, dash(detail))
	}
	tw.Flush()
}
