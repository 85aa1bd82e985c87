package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/match"
)

func newFactsCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "facts",
		Short: "Show the host facts the recommendation rules look at",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := o.newEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer e.close()
			f := e.eng.Facts
			if o.json {
				return writeJSON(o.stdout, f)
			}
			tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "arch\t%s\n", f.Arch)
			fmt.Fprintf(tw, "os\t%s %s (%s)\n", f.OS.ID, f.OS.VersionID, f.OS.VersionCodename)
			fmt.Fprintf(tw, "virtualization\t%s\n", f.Virtualization)
			fmt.Fprintf(tw, "dmi\t%s:%s\n", f.DMI.Vendor, f.DMI.Product)
			fmt.Fprintf(tw, "device_tree\t%s\n", strings.Join(f.DeviceTree, " "))
			for _, d := range f.PCI {
				fmt.Fprintf(tw, "pci\t%s:%s\t%s\n", d.Vendor, d.Device, d.Address)
			}
			for p, ok := range f.Files {
				fmt.Fprintf(tw, "file\t%s\t%v\n", p, ok)
			}
			return tw.Flush()
		},
	}
}

// explanation is explain's JSON.
type explanation struct {
	Name        string        `json:"name"`
	Source      string        `json:"source"`
	Image       string        `json:"image"`
	Enabled     bool          `json:"enabled"`
	Recommended bool          `json:"recommended"`
	Reasons     []string      `json:"reasons"`
	Checks      []match.Check `json:"checks"`
	Conflicts   []string      `json:"conflicts"`
	Update      string        `json:"update"`
}

func newExplainCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "explain NAME",
		Short: "Show every rule of an extension, whether it matched and the fact compared",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.newEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer e.close()
			en := e.eng.Manifests.Get(args[0])
			if en == nil {
				if e.manifestErr != nil {
					return exitWith(ExitUsage, fmt.Errorf("unknown extension %q (and %v)", args[0], e.manifestErr))
				}
				return exitWith(ExitUsage, fmt.Errorf("unknown extension %q", args[0]))
			}
			res := match.Evaluate(en, e.eng.Facts)
			ex := explanation{Name: en.Name, Source: fmt.Sprintf("%s:%d", en.Source, en.Line), Image: en.Image(), Enabled: en.AutoEnabled(),
				Recommended: res.Recommended, Reasons: res.Reasons, Checks: res.Checks, Conflicts: nonNil(e.eng.Manifests.Conflicting(en.Name)), Update: en.Update}
			if ex.Checks == nil {
				ex.Checks = []match.Check{}
			}
			if o.json {
				if err := writeJSON(o.stdout, ex); err != nil {
					return err
				}
			} else {
				w := o.stdout
				fmt.Fprintf(w, "%s (%s), image %s\n", ex.Name, ex.Source, ex.Image)
				if len(ex.Checks) == 0 {
					fmt.Fprintln(w, "  no rules: never recommended")
				}
				for _, c := range ex.Checks {
					mark := "no "
					if c.Matched {
						mark = "YES"
					}
					fmt.Fprintf(w, "  %s %s %q  (host: %s)\n", mark, c.Rule, c.Pattern, c.Fact)
				}
				verdict := "not recommended"
				if ex.Recommended {
					verdict = "recommended: " + strings.Join(ex.Reasons, ", ")
				}
				if !ex.Enabled {
					verdict += " (enabled = false: auto never installs it)"
				}
				fmt.Fprintln(w, verdict)
				if len(ex.Conflicts) > 0 {
					fmt.Fprintf(w, "conflicts with: %s\n", strings.Join(ex.Conflicts, ", "))
				}
			}
			if e.manifestErr != nil {
				return exitWith(ExitUsage, e.manifestErr)
			}
			return nil
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
