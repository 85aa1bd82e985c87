package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/trust"
)

// keysResult is keys' JSON.
type keysResult struct {
	Keys   []*trust.Key `json:"keys"`
	Errors []string     `json:"errors"`
}

func newKeysCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "keys",
		Short: "List the keys that may sign releases, and the extensions each may sign",
		Long: "keys lists the minisign and OpenPGP public keys in " + rootfs.VendorKeysDir + " (vendor) and\n" +
			rootfs.LocalKeysDir + " (local), with their ids, for a manifest's keys = [...], and the\n" +
			"extensions their NAME.extensions file names. A key file that cannot be read is printed\n" +
			"on stderr and the exit status is 2. See docs/trust.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kr, errs := trust.LoadKeyring(rootfs.New(o.root))
			res := keysResult{Keys: kr.Keys, Errors: []string{}}
			if res.Keys == nil {
				res.Keys = []*trust.Key{}
			}
			for _, err := range errs {
				res.Errors = append(res.Errors, err.Error())
			}
			if o.json {
				if err := writeJSON(o.stdout, res); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tMETHOD\tID\tFROM\tEXTENSIONS\tCOMMENT")
				for _, k := range kr.Keys {
					from := "local"
					if k.Vendor {
						from = "vendor"
					}
					scope := strings.Join(k.Scope, ",")
					if scope == "" {
						scope = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, k.Method, k.ID, from, scope, k.Comment)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			for _, e := range res.Errors {
				fmt.Fprintln(o.stderr, "sysextctl: keys:", e)
			}
			if len(errs) > 0 {
				return &exitError{code: ExitUsage, silent: true}
			}
			return nil
		},
	}
}
