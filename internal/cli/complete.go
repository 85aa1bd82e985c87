package cli

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// completeNames completes extension names for a verb: those the manifests
// name (under --root), plus the installed ones for remove and update. It
// reads only files: no facts, no network, no lock.
func (o *options) completeNames(verb string, max int) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if max > 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		root := rootfs.New(o.root)
		set, _, _ := manifest.Load(root)
		names := set.Names()
		if verb == engine.VerbRemove || verb == engine.VerbUpdate {
			if installed, err := engine.InstalledNames(root); err == nil {
				names = append(names, installed...)
			}
		}
		slices.Sort(names)
		var out []cobra.Completion
		for _, n := range slices.Compact(names) {
			if strings.HasPrefix(n, toComplete) && !slices.Contains(args, n) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// nameArgs are the commands, other than those that set their own, whose
// first arguments are extension names, and how many they take (0: any).
var nameArgs = map[string]int{"hold": 0, "unhold": 0, "pin": 1, "unpin": 0, "rollback": 0, "history": 1}

// completeNamesOf gives the commands of nameArgs name completion, where
// they have none of their own. Installed names are offered too.
func (o *options) completeNamesOf(root *cobra.Command) {
	for _, c := range root.Commands() {
		if n, ok := nameArgs[c.Name()]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = o.completeNames(engine.VerbRemove, n)
		}
	}
}
