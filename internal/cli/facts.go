package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/match"
	"github.com/spamtagger/sysextd/internal/payload"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/rules"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/trust"
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
	// Signature is the policy in force and why; the rest describe what is
	// installed: its version, who signed it, hold and pin, and the etc/
	// and var/ files it put on the host.
	Signature        string         `json:"signature"`
	InstalledVersion string         `json:"installed_version,omitempty"`
	SignedBy         string         `json:"signed_by,omitempty"`
	Held             bool           `json:"held,omitempty"`
	HoldReason       string         `json:"hold_reason,omitempty"`
	Pin              string         `json:"pin,omitempty"`
	Payload          []payload.File `json:"payload,omitempty"`
	// AllowEtc and AllowShadow are the entry's payload and shadowing allowances.
	AllowEtc    []string `json:"allow_etc,omitempty"`
	AllowShadow *bool    `json:"allow_shadow,omitempty"`
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
			en := e.eng.Manifests.Get(args[0])
			if ps := e.eng.Manifests.Invalid[args[0]]; en == nil && len(ps) > 0 {
				msg := fmt.Sprintf("%s is left out: its manifest table has %d problem(s):", args[0], len(ps))
				for _, p := range ps {
					msg += "\n  " + p.String()
				}
				return exitWith(ExitUsage, errors.New(msg))
			}
			if en == nil {
				err := fmt.Errorf("unknown extension %q: no manifest names it (%s)", args[0], e.manifestsRead())
				if e.manifestErr != nil {
					err = fmt.Errorf("%w\n%w", err, e.manifestErr)
				}
				return exitWith(ExitUsage, err)
			}
			res := match.Evaluate(en, e.eng.Facts)
			ex := explanation{Name: en.Name, Source: fmt.Sprintf("%s:%d", en.Source, en.Line), Image: en.Image(), Enabled: en.AutoEnabled(),
				Recommended: res.Recommended, Reasons: res.Reasons, Checks: res.Checks, Conflicts: nonNil(e.eng.Manifests.Conflicting(en.Name)), Update: en.Update}
			if ex.Checks == nil {
				ex.Checks = []match.Check{}
			}
			kr, _ := trust.LoadKeyring(e.root)
			pol := trust.PolicyFor(kr, en.Signature, en.Keys, en.Source == rootfs.VendorManifest, e.eng.SignatureDefault, en.Name)
			ex.Signature = pol.Mode + " (" + pol.Reason + ")"
			if pol.Broken != "" {
				ex.Signature += "; REFUSING every release: " + pol.Broken
			}
			ex.AllowEtc, ex.AllowShadow = en.AllowEtc, en.AllowShadow
			if st, err := (store.Store{Root: e.root}).LoadState(); err == nil {
				if r := st.Extensions[en.Name]; r != nil {
					ex.InstalledVersion, ex.SignedBy, ex.Held, ex.HoldReason, ex.Pin, ex.Payload = r.Version, r.SignedBy, r.Hold, r.HoldReason, r.Pin, r.Payload
				}
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

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
