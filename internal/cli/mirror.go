package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

func newMirrorCmd(o *options) *cobra.Command {
	var to, tokenFile string
	cmd := &cobra.Command{
		Use:   "mirror --to DIR|file:///DIR|https://HOST/PATH|oci://REGISTRY/REPO [NAME...]",
		Short: "Copy the releases the manifests name into a static mirror or registry (all entries when none named)",
		Long: "mirror looks up the release of each named extension (all manifest entries when none is named) for this\n" +
			"host's codename and architecture, wherever the manifests say it is, downloads every asset of that release\n" +
			"with its digest checked, and writes it to a static mirror directory in the layout of docs/sources.md.\n" +
			"Serve the directory over https, or copy it, and list it in mirrors = [...].\n" +
			"With --to https://[USER:PASSWORD@]HOST/PATH the files are uploaded with HTTP PUT to a web server that\n" +
			"accepts it (nginx dav_methods PUT, Apache mod_dav, an object store), in the same layout: the assets first,\n" +
			"the index last, assets the index already lists unchanged are skipped. The credentials: a Bearer token from\n" +
			"--token-file or $SYSEXTD_MIRROR_TOKEN, else basic auth from the URL, else the login /etc/sysextd/auth.conf\n" +
			"holds for the URL (docs/sources.md; keeps the password off the command line). Never printed.\n" +
			"http:// only to loopback.\n" +
			"With --to oci://REGISTRY/REPO the release becomes an OCI artifact tagged TAG_CODENAME_ARCH and CODENAME_ARCH,\n" +
			"in REPO/IMAGE (or in REPO when its last component is the image name).",
		RunE: func(cmd *cobra.Command, names []string) error {
			return o.mirror(cmd, to, tokenFile, names)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the mirror: a `DIR`, file:///DIR, https://HOST/PATH (upload by PUT) or oci://REGISTRY/REPO")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "for an https upload: send the Bearer token in `FILE` (default $SYSEXTD_MIRROR_TOKEN)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func (o *options) mirror(cmd *cobra.Command, to, tokenFile string, names []string) error {
	ctx := cmd.Context()
	target, err := app.ParseMirrorTarget(app.MirrorOptions{Root: rootfs.New(o.root), To: to, TokenFile: tokenFile, Getenv: o.getenv,
		Logins: func() (app.Logins, error) {
			la := o.loadAuth() // its warnings come with the environment
			return la.logins, la.err
		},
		Warn: func(msg string) { fmt.Fprintln(o.stderr, "sysextctl: warning:", msg) }})
	if err != nil {
		return exitWith(ExitUsage, err)
	}
	e, err := o.newEnv(ctx)
	if err != nil {
		return err
	}
	defer e.close()
	if e.manifestErr != nil {
		return exitWith(ExitUsage, e.manifestErr)
	}
	res, err := e.eng.Mirror(ctx, target, names)
	if err != nil {
		return exitWith(ExitUsage, err)
	}
	ok, bad, network := 0, 0, 0
	for _, r := range res {
		if r.Err != nil {
			bad++
			if engine.IsNetwork(r.Err) {
				network++
			}
			fmt.Fprintf(o.stderr, "sysextctl: %s: %v\n", r.Name, r.Err)
			continue
		}
		ok++
		if !o.quiet {
			fmt.Fprintf(o.stdout, "mirrored %s %s (%s) into %s\n", r.Name, r.Version, r.Tag, target)
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
