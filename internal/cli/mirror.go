package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/source"
)

func newMirrorCmd(o *options) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "mirror --to DIR|file:///DIR [NAME...]",
		Short: "Copy the releases the manifests name into a static mirror (all entries when none named)",
		Long: "mirror looks up the release of each named extension (all manifest entries when none is named) for this\n" +
			"host's codename and architecture, wherever the manifests say it is, downloads every asset of that release\n" +
			"with its digest checked, and writes it to a static mirror directory in the layout of docs/sources.md.\n" +
			"Serve the directory over https, or copy it, and list it in mirrors = [...].",
		RunE: func(cmd *cobra.Command, names []string) error {
			return o.mirror(cmd, to, names)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "mirror `DIR` (a directory or file:///DIR)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func (o *options) mirror(cmd *cobra.Command, to string, names []string) error {
	ctx := cmd.Context()
	dir := to
	if strings.Contains(to, "://") {
		ref, err := source.Parse(to)
		if err != nil {
			return exitWith(ExitUsage, err)
		}
		if ref.Kind != source.KindMirror || !strings.HasPrefix(ref.URL, "file://") {
			return exitWith(ExitUsage, fmt.Errorf("--to %s: only a directory (or file:///DIR) can be written", to))
		}
		dir = ref.Path
	}
	e, err := o.newEnv(ctx)
	if err != nil {
		return err
	}
	defer e.close()
	if e.manifestErr != nil {
		return exitWith(ExitUsage, e.manifestErr)
	}
	if len(names) == 0 {
		names = e.eng.Manifests.Names()
	}
	var unknown []string
	for _, n := range names {
		if e.eng.Manifests.Get(n) == nil {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return exitWith(ExitUsage, &engine.UnknownError{Names: unknown})
	}
	res := e.eng.Releases(ctx, names)
	ok, bad, network := 0, 0, 0
	for _, n := range names {
		r := res[n]
		if r.Err == nil {
			en := e.eng.Manifests.Get(n)
			r.Err = source.AddToMirror(ctx, dir, en.Image(), r.Release, e.eng.Source, time.Now(), false)
		}
		if r.Err != nil {
			bad++
			if source.IsNetwork(r.Err) {
				network++
			}
			fmt.Fprintf(o.stderr, "sysextctl: %s: %v\n", n, r.Err)
			continue
		}
		ok++
		if !o.quiet {
			fmt.Fprintf(o.stdout, "mirrored %s %s (%s) into %s\n", n, r.Release.Version, r.Release.Tag, dir)
		}
	}
	switch {
	case bad == 0:
		return nil
	case network == bad:
		return exitWith(ExitNetwork, fmt.Errorf("%d extension(s) not mirrored: network or rate limit", bad))
	case ok > 0:
		return exitWith(ExitPartial, fmt.Errorf("%d of %d extension(s) not mirrored", bad, ok+bad))
	default:
		return exitWith(ExitFailure, fmt.Errorf("%d extension(s) not mirrored", bad))
	}
}
