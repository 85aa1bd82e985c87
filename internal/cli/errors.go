package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/source"
)

// usageError marks what cobra's own hooks reject: a bad flag, wrong
// arguments, an unknown command. Only these (and errors a verb wraps with
// exitWith(ExitUsage, ...)) exit 2; nothing is classified by its text.
func usageError(err error) error { return exitWith(ExitUsage, err) }

// typeUsageErrors makes every command of the tree report cobra's flag and
// argument errors as usage errors. Call it once the tree is complete
// (completion and help commands included).
func typeUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if v := c.Args; v != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := v(cmd, args); err != nil {
					return usageError(err)
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownCommand is the root's argument check: with subcommands, any
// argument left for the root itself names no command.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError(errors.New(msg + " (see sysextctl --help)"))
}

// exitCode maps an error no verb typed: network and rate limits are 4,
// everything else 1.
func exitCode(err error) int {
	if _, ok := source.IsRateLimit(err); ok || source.IsNetwork(err) {
		return ExitNetwork
	}
	return ExitFailure
}

// printError writes err once, one "sysextctl: " line per line of its text,
// followed by a hint when one helps.
func printError(w io.Writer, err error) {
	for line := range strings.Lines(err.Error()) {
		fmt.Fprintln(w, "sysextctl:", strings.TrimRight(line, "\n"))
	}
	if h := hint(err); h != "" {
		fmt.Fprintln(w, "sysextctl: hint:", h)
	}
}

// Hints for people, chosen by error type (STYLE: hints only at the CLI edge).
const (
	hintRateLimit = "set GITHUB_TOKEN (or --github-token-file) for GitHub's higher authenticated rate limit; `sysextctl list --offline` shows the cached data meanwhile"
	hintNetwork   = "GitHub could not be reached: check the network and, behind a proxy, HTTPS_PROXY; `sysextctl list --offline` uses cached data only"
)

func hint(err error) string {
	// A registry's failures say what they are themselves: never GitHub's hint.
	var re *source.RegistryError
	if errors.As(err, &re) {
		if source.IsNetwork(err) {
			return "registry " + re.Registry + " could not be reached: check the network and, behind a proxy, HTTPS_PROXY"
		}
		return ""
	}
	if _, ok := source.IsRateLimit(err); ok {
		return hintRateLimit
	}
	if source.IsNetwork(err) {
		return hintNetwork
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.hint != "" {
		return ee.hint
	}
	return ""
}
