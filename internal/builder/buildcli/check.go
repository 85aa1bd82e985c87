package buildcli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/builder/build"
)

func newCheckCmd(getenv func(string) string) *cobra.Command {
	a := &archiveOptions{getenv: getenv}
	g := &githubOptions{getenv: getenv}
	var from string
	var noRecommends bool
	cmd := &cobra.Command{
		Use:   "check [--base ROOTFS] [--from DIR] [metadata.json]",
		Short: "Exit 0 when the last release is up to date, 1 when a rebuild is needed",
		Long: "check resolves what a build would put in each image now (the newest binary versions in\n" +
			"DIST and DIST-security) and compares it with the last release's release.json: from\n" +
			"--from DIR, else the latest GitHub release of metadata.json's repository.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := build.LoadMetadata(metadataArg(args))
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			bases, arch, cleanup, err := a.prepare(cmd.Context())
			if err != nil {
				return err
			}
			defer cleanup()
			var last *build.ReleaseJSON
			if from != "" {
				last, err = releaseFromDir(from)
			} else {
				owner, repo, err2 := g.ownerRepo(m)
				if err2 != nil {
					return err2
				}
				p, err2 := g.client(owner, repo)
				if err2 != nil {
					return err2
				}
				last, err = latestReleaseJSON(cmd.Context(), p)
			}
			if err != nil {
				return err
			}
			want, err := build.Want(cmd.Context(), build.Options{Metadata: m, Bases: bases, Archive: arch, NoRecommends: noRecommends})
			if err != nil {
				return err
			}
			res := build.Compare(m, last, want)
			w := cmd.OutOrStdout()
			if !res.Rebuild {
				fmt.Fprintf(w, "up to date (release %s)\n", last.Version)
				return nil
			}
			fmt.Fprintln(w, "rebuild:")
			for _, r := range res.Reasons {
				fmt.Fprintln(w, "  "+r)
			}
			return &exitError{ExitRebuild, fmt.Errorf("rebuild needed")}
		},
	}
	a.register(cmd)
	g.register(cmd.Flags())
	cmd.Flags().StringVar(&from, "from", "", "directory holding the last release's release.json (instead of GitHub)")
	cmd.Flags().BoolVar(&noRecommends, "no-install-recommends", false, "leave Recommends out (as the build did)")
	return cmd
}
