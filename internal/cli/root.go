// Package cli is sysextctl: the cobra command tree, the wiring of the
// engine's dependencies from flags and environment, output for people and
// --json, and the mapping of outcomes to exit codes (SPEC §10).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spamtagger/sysextd/internal/buildinfo"
)

// Exit codes of SPEC §10.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	ExitPartial = 3
	ExitNetwork = 4
)

// exitError carries an exit code up to Run. Its message was already
// printed when silent is set.
type exitError struct {
	code   int
	err    error
	silent bool
	hint   string // printed after the error, for people
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

// options are the global flags, shared by every command.
type options struct {
	// setMemoryLimit is debug.SetMemoryLimit in the sysextctl process
	// (Main), nil in tests.
	setMemoryLimit func(int64) int64
	root           string
	githubAPI      string
	tokenFile      string
	factsFile      string
	json           bool
	quiet          bool
	verbose        bool
	dryRun         bool
	ignorePhasing  bool
	noBlock        bool
	offline        bool
	maxSize        int64
	image          string   // install --image FILE
	enterprise     []string // GitHub Enterprise Server hosts
	stdout         io.Writer
	stderr         io.Writer
	isTerminal     bool
	getenv         func(string) string
	mirrorAuth     *loadedAuth // auth.conf, read once per command (loadAuth)
	rootFlag       *pflag.Flag // --root, to tell "given" from the default (viaDaemon)
}

// NewRootCmd builds the sysextctl command tree writing to stdout and
// stderr.
func NewRootCmd(stdout, stderr io.Writer) *cobra.Command {
	return newRootCmd(stdout, stderr, nil)
}

// newRootCmd is NewRootCmd; setMemoryLimit, when not nil, is how a
// command tunes the Go runtime of its own process (Main), never a test's.
func newRootCmd(stdout, stderr io.Writer, setMemoryLimit func(int64) int64) *cobra.Command {
	o := &options{stdout: stdout, stderr: stderr, getenv: os.Getenv, setMemoryLimit: setMemoryLimit}
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("INVOCATION_ID") == "" {
			o.isTerminal = true
		}
	}
	cmd := &cobra.Command{
		Use:                        "sysextctl COMMAND",
		Short:                      "Manage systemd system extensions on SpamTagger appliances",
		Long:                       "sysextctl installs, updates and removes systemd system extensions (sysext images) from the\nreleases named in the SpamTagger manifests, recommending them from the host's hardware.",
		Version:                    buildinfo.Version,
		SilenceUsage:               true,
		SilenceErrors:              true,
		Args:                       unknownCommand,
		SuggestionsMinimumDistance: 2,
		RunE:                       func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.root, "root", "/", "operate on the tree under `DIR` (as systemd-sysext --root); given, even as /, sysextctl works in-process rather than through sysextd")
	o.rootFlag = pf.Lookup("root")
	pf.StringVar(&o.githubAPI, "github-api", "", "GitHub API base `URL` (default $SYSEXT_GITHUB_API or https://api.github.com/)")
	pf.StringSliceVar(&o.enterprise, "github-enterprise", nil, "treat `HOST` as a GitHub Enterprise Server (API at https://HOST/api/v3/); repeatable, added to github_enterprise in sysextd.toml")
	pf.StringVar(&o.tokenFile, "github-token-file", "", "read the GitHub token from `FILE` (default $GITHUB_TOKEN or the github-token credential)")
	pf.StringVar(&o.factsFile, "facts", "", "use host facts from `FILE` (JSON as printed by facts --json) instead of detecting them")
	pf.BoolVar(&o.json, "json", false, "print JSON")
	pf.BoolVarP(&o.quiet, "quiet", "q", false, "print errors only")
	pf.BoolVarP(&o.verbose, "verbose", "v", false, "print progress details")
	pf.Int64Var(&o.maxSize, "max-size", 0, "refuse downloads larger than `BYTES` (default 2 GiB)")

	cmd.AddCommand(newListCmd(o), newFactsCmd(o), newExplainCmd(o), newRecoverCmd(o), newMirrorCmd(o))
	cmd.AddCommand(newLifecycleCmds(o)...)
	for _, verb := range mutatingVerbs {
		cmd.AddCommand(newMutateCmd(o, verb))
	}
	cmd.AddCommand(newSignCmd(o), newKeysCmd(o))
	cmd.AddCommand(newHistoryCmd(o), newStatusCmd(o), newInspectCmd(o))
	o.completeNamesOf(cmd)
	return cmd
}

// sysext.pl's spellings, so that its sysext.service keeps working.
var legacy = map[string]string{"-s": "status", "-i": "install", "-r": "remove", "-u": "update", "-a": "auto", "-h": "help"}

// Run runs sysextctl with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, newRootCmd(stdout, stderr, nil), args, stderr)
}

// Main is Run for the sysextctl process itself: commands may tune its Go
// runtime (list's memory limit).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, newRootCmd(stdout, stderr, debug.SetMemoryLimit), args, stderr)
}

func run(ctx context.Context, cmd *cobra.Command, args []string, stderr io.Writer) int {
	args = translateLegacy(args)
	cmd.InitDefaultHelpCmd()
	cmd.InitDefaultCompletionCmd()
	typeUsageErrors(cmd)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.silent && ee.err != nil {
			printError(stderr, err)
		}
		return ee.code
	}
	printError(stderr, err)
	return exitCode(err)
}

// valueFlags are the global flags that take a separate value.
var valueFlags = map[string]bool{"--root": true, "--github-api": true, "--github-enterprise": true, "--github-token-file": true, "--facts": true, "--max-size": true}

// translateLegacy maps the first non-flag argument from sysext.pl's form.
func translateLegacy(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if v, ok := legacy[a]; ok {
			out[i] = v
			return out
		}
		if valueFlags[a] {
			i++
			continue
		}
		if !strings.HasPrefix(a, "-") {
			return out
		}
	}
	return out
}

// logger writes diagnostics to stderr at the level -q/-v ask for.
func (o *options) logger() *slog.Logger {
	level := slog.LevelWarn
	switch {
	case o.quiet:
		level = slog.LevelError
	case o.verbose:
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}}))
}
