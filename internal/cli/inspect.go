package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/shadow"
	"github.com/spamtagger/sysextd/internal/store"
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
			root := rootfs.New(o.root)
			s := store.Store{Root: root}
			st, err := s.LoadState()
			if err != nil {
				return exitWith(ExitFailure, err)
			}
			arg := args[0]
			img := ""
			if rec := st.Extensions[arg]; rec != nil && !strings.Contains(arg, "/") {
				img = s.ImagePath(rec.Image)
			} else if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
				img = arg
			} else {
				return exitWith(ExitUsage, fmt.Errorf("inspect %s: neither an installed extension nor an image file", arg))
			}
			installed, err := shadow.Installed(s)
			if err != nil {
				return exitWith(ExitFailure, err)
			}
			rep, err := shadow.Check(cmd.Context(), root, img, installed)
			if err != nil {
				return exitWith(ExitFailure, err)
			}
			if o.json {
				return writeJSON(o.stdout, rep)
			}
			printInspect(o.stdout, rep)
			return nil
		},
	}
}

func printInspect(w io.Writer, r shadow.Report) {
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
}
