package buildcli

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/builder/build"
	"github.com/spamtagger/sysextd/internal/trust"
)

func newBuildCmd(getenv func(string) string) *cobra.Command {
	a := &archiveOptions{getenv: getenv}
	var out, tag string
	var noRecommends bool
	var signKeys []string
	var passwordFile string
	cmd := &cobra.Command{
		Use:   "build [--base ROOTFS] [--out DIR] [--sign-key FILE] [metadata.json]",
		Short: "Build every dist and architecture of metadata.json into DIR",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := build.LoadMetadata(metadataArg(args))
			if err != nil {
				return &exitError{ExitUsage, err}
			}
			var signers []trust.Signer
			if len(signKeys) > 0 {
				var password []byte
				if passwordFile != "" {
					b, err := os.ReadFile(passwordFile)
					if err != nil {
						return &exitError{ExitUsage, fmt.Errorf("reading password: %w", err)}
					}
					password = bytes.TrimRight(b, "\r\n")
				}
				for _, k := range signKeys {
					sg, err := trust.LoadSigner(k, password)
					if err != nil {
						return &exitError{ExitUsage, err}
					}
					signers = append(signers, sg)
				}
			}
			bases, arch, cleanup, err := a.prepare(cmd.Context())
			if err != nil {
				return err
			}
			defer cleanup()
			res, err := build.Build(cmd.Context(), build.Options{
				Metadata: m, Bases: bases, Archive: arch, OutDir: out, Tag: tag,
				NoRecommends: noRecommends, Signers: signers, Log: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, img := range res.Images {
				fmt.Fprintf(w, "%s: %s %s, %d packages, %d files\n", img.Path, m.Package, img.Packages[m.Package], len(img.Packages), len(img.Files))
				for _, s := range img.Scripts {
					fmt.Fprintf(w, "  note: %s has maintainer scripts that do not run for an extension; its postinst %s\n", s.Package, strings.Join(s.Actions, ", "))
				}
				for _, d := range img.Dropped {
					fmt.Fprintf(w, "  note: left out (outside /usr, /opt and /etc): %s\n", d)
				}
				for _, r := range img.Resolution.SkippedRecommends {
					fmt.Fprintf(w, "  note: recommendation not installable: %s\n", r)
				}
			}
			fmt.Fprintf(w, "release %s: %s\n", res.Release.Version, strings.Join(res.Assets, " "))
			return nil
		},
	}
	a.register(cmd)
	cmd.Flags().StringVar(&out, "out", "output", "directory the release assets are written to")
	cmd.Flags().StringVar(&tag, "tag", "", "release version written to release.json (default: now as 2006.01.02-1504)")
	cmd.Flags().BoolVar(&noRecommends, "no-install-recommends", false, "leave Recommends out")
	cmd.Flags().StringArrayVar(&signKeys, "sign-key", nil, "sign SHA256SUMS with this minisign or OpenPGP secret key (repeatable; see docs/trust.md)")
	cmd.Flags().StringVar(&passwordFile, "sign-password-file", "", "file holding the password of an encrypted signing key")
	return cmd
}
