package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/rules"
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
			printFacts(o.stdout, f, o.virtNote(e))
			return nil
		},
	}
}

// virtNote says where the virtualization fact came from when it is not
// the tree's own: under --root, PCI, DMI and the device tree are read from
// the tree, but virtualization is the running host's (systemd answers for
// the machine it runs on).
func (o *options) virtNote(e *env) string {
	if e.root.IsHost() || o.factsFile != "" {
		return ""
	}
	return "detected on the running host, not read from --root"
}

// printFacts prints the facts one per line, in a fixed order, with "-" for
// what was not found.
func printFacts(w io.Writer, f *facts.Facts, virtNote string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "arch\t%s\n", dash(f.Arch))
	osLine := strings.TrimSpace(f.OS.ID + " " + f.OS.VersionID)
	if f.OS.VersionCodename != "" {
		osLine += " (" + f.OS.VersionCodename + ")"
	}
	fmt.Fprintf(tw, "os\t%s\n", dash(strings.TrimSpace(osLine)))
	for _, line := range rules.FactLines(&f.Facts, virtNote) {
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

func newExplainCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:               "explain NAME",
		Short:             "Show every rule of an extension, whether it matched and the fact compared",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("explain", 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.newEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer e.close()
			ex, err := api.Explain(cmd.Context(), e.eng, args[0])
			var unknown *engine.UnknownError
			if errors.As(err, &unknown) {
				err := fmt.Errorf("unknown extension %q: no manifest names it (%s)", args[0], e.manifestsRead())
				if e.manifestErr != nil {
					err = fmt.Errorf("%w\n%w", err, e.manifestErr)
				}
				return exitWith(ExitUsage, err)
			}
			if err != nil {
				return exitWith(ExitUsage, err)
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
					fact := c.Fact
					if k := rules.Lookup(c.Rule); k != nil && k.FromHost {
						if note := o.virtNote(e); note != "" {
							fact += "; " + note
						}
					}
					fmt.Fprintf(w, "  %s %s %q  (host: %s)\n", mark, c.Rule, c.Pattern, fact)
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
				fmt.Fprintf(w, "signature: %s\n", ex.Signature)
				if ex.InstalledVersion != "" {
					fmt.Fprintf(w, "installed %s, signed by %s\n", ex.InstalledVersion, dash(ex.SignedBy))
				}
				if ex.AvailableVersion != "" && ex.Rollout != "" {
					fmt.Fprintf(w, "available %s is %s\n", ex.AvailableVersion, ex.Rollout)
				}
				if !ex.ProbationUntil.IsZero() {
					fmt.Fprintln(w, probationLine(ex.ProbationUntil))
				}
				if ex.Held {
					fmt.Fprintf(w, "held: %s\n", ex.HoldReason)
				}
				if ex.Pin != "" {
					fmt.Fprintf(w, "pinned to %s\n", ex.Pin)
				}
				for _, p := range ex.Payload {
					state := "installed"
					if !p.Installed {
						state = "left alone (the administrator's)"
					}
					fmt.Fprintf(w, "  %s  %s\n", p.Path, state)
				}
			}
			if e.manifestErr != nil {
				return exitWith(ExitUsage, e.manifestErr)
			}
			return nil
		},
	}
}
