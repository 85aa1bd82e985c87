package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/source"
)

func newMirrorCmd(o *options) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "mirror --to DIR|file:///DIR|oci://REGISTRY/REPO [NAME...]",
		Short: "Copy the releases the manifests name into a static mirror (all entries when none named)",
		Long: "mirror looks up the release of each named extension (all manifest entries when none is named) for this\n" +
			"host's codename and architecture, wherever the manifests say it is, downloads every asset of that release\n" +
			"with its digest checked, and writes it to a static mirror directory in the layout of docs/sources.md.\n" +
			"Serve the directory over https, or copy it, and list it in mirrors = [...].\n" +
			"With --to oci://REGISTRY/REPO the release becomes an OCI artifact tagged TAG_CODENAME_ARCH and CODENAME_ARCH,\n" +
			"in REPO/IMAGE (or in REPO when its last component is the image name).",
		RunE: func(cmd *cobra.Command, names []string) error {
			return o.mirror(cmd, to, names)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "mirror `DIR` (a directory, file:///DIR or oci://REGISTRY/REPO)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func (o *options) mirror(cmd *cobra.Command, to string, names []string) error {
	ctx := cmd.Context()
	dir, ociURL := to, ""
	if strings.Contains(to, "://") {
		ref, err := source.Parse(to)
		if err != nil {
			return exitWith(ExitUsage, err)
		}
		switch {
		case ref.Kind == source.KindOCI:
			ociURL, dir = ref.URL, ""
		case ref.Kind == source.KindMirror && strings.HasPrefix(ref.URL, "file://"):
			dir = ref.Path
		default:
			return exitWith(ExitUsage, fmt.Errorf("--to %s: want a directory, file:///DIR or oci://REGISTRY/REPO", to))
		}
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
			if ociURL != "" {
				r.Err = pushOCI(ctx, ociURL, n, r.Release, e)
			} else {
				r.Err = source.AddToMirror(ctx, dir, en.Image(), r.Release, e.eng.Source, time.Now(), false)
			}
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
			fmt.Fprintf(o.stdout, "mirrored %s %s (%s) into %s\n", n, r.Release.Version, r.Release.Tag, dir+ociURL)
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

// pushOCI pushes one extension's release to the OCI repository of its
// image under to.
func pushOCI(ctx context.Context, to, name string, rel *source.Release, e *env) error {
	o := source.NewOCI(source.HTTPOptions{}, "")
	tmp, err := os.MkdirTemp("", "sysextctl-mirror-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return o.PushRelease(ctx, to, e.eng.Manifests.Get(name).Image(), rel, e.eng.Target(), e.eng.Source, tmp)
}
