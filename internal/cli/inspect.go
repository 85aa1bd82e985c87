package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

func newInspectCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME|FILE",
		Short: "List what an image adds, what of the base /usr it shadows and what other extensions ship too",
		Long: "inspect reads an installed extension (NAME) or an image file (FILE, a path) without mounting it and\n" +
			"lists the files it adds under /usr and /opt, those the base tree already has (merged, the image's copy\n" +
			"hides them), and those an installed extension ships too (then the overlay order decides).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := engine.Inspect(cmd.Context(), rootfs.New(o.root), args[0])
			if errors.Is(err, engine.ErrNotInspectable) {
				return exitWith(ExitUsage, err)
			}
			if err != nil {
				return exitWith(ExitFailure, err)
			}
			if o.json {
				return writeJSON(o.stdout, res)
			}
			printInspect(o.stdout, res)
			return nil
		},
	}
}

func printInspect(w io.Writer, in *engine.Inspection) {
	r := in.Report
	fmt.Fprintf(w, "Image: %s\n", r.Image)
	if len(r.Shadows) > 0 {
		fmt.Fprintf(w, "\nShadows %d file(s) of the base tree (merged, the image's copy wins):\n", len(r.Shadows))
		for _, p := range r.Shadows {
			fmt.Fprintln(w, "  "+p)
		}
	}
	if len(r.Overlaps) > 0 {
		fmt.Fprintf(w, "\nShips %d file(s) an installed extension ships too (the overlay order decides):\n", len(r.Overlaps))
		for _, o := range r.Overlaps {
			fmt.Fprintf(w, "  %s (also in %s; %s's copy is seen)\n", o.Path, o.With, o.Wins)
		}
	}
	if r.BaseUnknown {
		fmt.Fprintln(w, "\nNote: /usr is merged; files other extensions ship cannot be checked against the base tree.")
	}
	if !r.Shadowing() {
		fmt.Fprintln(w, "\nHides nothing.")
	}
	fmt.Fprintf(w, "\nAdds %d file(s):\n", len(r.Adds))
	for _, p := range r.Adds {
		fmt.Fprintln(w, "  "+p)
	}
	fmt.Fprintf(w, "\nInstalls %d file(s) under /etc and /var like dpkg conffiles:\n", len(in.Payload))
	for _, p := range in.Payload {
		fmt.Fprintf(w, "  %s %s\n", p.Mode, p.Path)
	}
	if len(in.Enables) > 0 {
		fmt.Fprintf(w, "\nEnables (its own enablement links): %s\n", strings.Join(in.Enables, " "))
	}
	if len(in.PayloadRefused) > 0 {
		fmt.Fprintf(w, "\nThe payload policy refuses %d entr(ies) (the install fails unless the manifest entry sets allow_etc):\n", len(in.PayloadRefused))
		for _, r := range in.PayloadRefused {
			fmt.Fprintln(w, "  "+r.String())
		}
	}
}
