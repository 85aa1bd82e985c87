package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/payload"
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
			res := inspection{Report: rep, Payload: []payloadEntry{}, PayloadRefused: []payload.Refusal{}}
			var prev []payload.File
			if rec := st.Extensions[arg]; rec != nil {
				prev = rec.Payload
			}
			if err := res.addPayload(cmd.Context(), root, img, prev); err != nil {
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

// inspection is inspect's answer: the shadowing report, and the image's
// etc/ and var/ payload with what the default payload policy refuses
// (a manifest entry's allow_etc may let some through).
type inspection struct {
	shadow.Report
	Payload        []payloadEntry    `json:"payload"`
	PayloadRefused []payload.Refusal `json:"payload_refused"`
	// Enables are the image's own units its enablement links name.
	Enables []string `json:"enables,omitempty"`
}

type payloadEntry struct {
	Path string `json:"path"`
	Mode string `json:"mode"`
}

func (in *inspection) addPayload(ctx context.Context, root rootfs.Root, img string, prev []payload.File) error {
	info, err := image.InspectContext(ctx, img)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", img, err)
	}
	files, err := payload.Read(ctx, img)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", img, err)
	}
	v := payload.Check(files, nil, info.UnitFiles, payload.HostOf(root, prev))
	for _, f := range v.Files {
		if !f.Mode.IsDir() {
			in.Payload = append(in.Payload, payloadEntry{Path: f.Path, Mode: f.Mode.String()})
		}
	}
	in.PayloadRefused = append(in.PayloadRefused, v.Refused...)
	in.Enables = v.Enable
	return nil
}

func printInspect(w io.Writer, in inspection) {
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
