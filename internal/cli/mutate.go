package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/engine"
)

var mutatingVerbs = []string{engine.VerbInstall, engine.VerbRemove, engine.VerbUpdate, engine.VerbAuto}

var verbHelp = map[string]struct{ use, short string }{
	engine.VerbInstall: {"install NAME|FILE...", "Install extensions (removing installed ones that conflict); FILE is a local image (./sysext-foo.raw)"},
	engine.VerbRemove:  {"remove NAME...", "Remove installed extensions"},
	engine.VerbUpdate:  {"update [NAME...]", "Update installed extensions (all when none named)"},
	engine.VerbAuto:    {"auto", "Install what the hardware recommends and update what is installed"},
}

func newMutateCmd(o *options, verb string) *cobra.Command {
	h := verbHelp[verb]
	cmd := &cobra.Command{
		Use:   h.use,
		Short: h.short,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.mutate(cmd, verb, args)
		},
	}
	if verb == engine.VerbInstall {
		cmd.Flags().StringVar(&o.image, "image", "", "install the local image `FILE` as the one extension NAME")
	}
	switch verb {
	case engine.VerbInstall, engine.VerbRemove:
		cmd.Args = cobra.MinimumNArgs(1)
	case engine.VerbAuto:
		cmd.Args = cobra.NoArgs
	}
	if verb != engine.VerbAuto {
		cmd.ValidArgsFunction = o.completeNames(verb, 0)
	}
	if verb == engine.VerbInstall || verb == engine.VerbUpdate {
		cmd.Flags().BoolVar(&o.ignorePhasing, "ignore-phasing", false, "take a release even when its phased rollout has not reached this appliance yet")
	}
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show the plan, change nothing")
	cmd.Flags().BoolVar(&o.noBlock, "no-block", false, "fail at once when another process holds the lock")
	return cmd
}

func (o *options) mutate(cmd *cobra.Command, verb string, names []string) error {
	ctx := cmd.Context()
	var imgs []engine.LocalImage
	if verb == engine.VerbInstall {
		var local []localImage
		var err error
		if names, local, err = localImages(o.image, names); err != nil {
			return exitWith(ExitUsage, err)
		}
		for _, li := range local {
			imgs = append(imgs, engine.LocalImage{Name: li.name, Path: li.path, OCI: li.oci})
		}
	}
	if len(imgs) == 0 && !o.dryRun {
		if c, ok := o.daemon(ctx); ok {
			defer c.Close()
			in := map[string]any{"names": names}
			if o.ignorePhasing {
				in["ignorePhasing"] = true
			}
			return o.viaDaemonMutate(ctx, c, verbMethods[verb], in)
		}
	}
	e, err := o.newEnv(ctx)
	if err != nil {
		return err
	}
	defer e.close()
	if e.manifestErr != nil {
		return exitWith(ExitUsage, fmt.Errorf("%w\nrefusing to %s until the manifest is fixed", e.manifestErr, verb))
	}
	if err := engine.CheckLocal(imgs); err != nil {
		return exitWith(ExitUsage, err)
	}
	if !o.dryRun {
		release, err := o.lock(ctx, e)
		if err != nil {
			return err
		}
		defer release()
	}
	e.eng.IgnorePhasing = o.ignorePhasing
	plan, err := e.eng.MakePlan(ctx, verb, names, imgs...)
	return o.applyPlan(ctx, e, verb, plan, err)
}

// lock takes the mutation lock and runs what must precede any plan
// (recovery, adoption). The caller defers the returned release.
func (o *options) lock(ctx context.Context, e *env) (func(), error) {
	release, err := e.eng.Lock(ctx, !o.noBlock, func() {
		fmt.Fprintln(o.stderr, "sysextctl: waiting for another sysextctl or sysextd to finish...")
	})
	if errors.Is(err, engine.ErrLocked) {
		return nil, exitWith(ExitFailure, err)
	}
	if err != nil {
		ee := &exitError{code: ExitFailure, err: err}
		if os.Geteuid() != 0 {
			ee.hint = "changes need root: run sysextctl as root"
		}
		return nil, ee
	}
	if err := o.recoverAndAdopt(ctx, e); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// applyPlan prints (--dry-run) or applies a plan made for verb, and maps
// the outcome to an exit code.
func (o *options) applyPlan(ctx context.Context, e *env, verb string, plan *engine.Plan, err error) error {
	var unknown *engine.UnknownError
	var bad *engine.LocalImageError
	if errors.As(err, &unknown) || errors.As(err, &bad) {
		return exitWith(ExitUsage, err)
	}
	if err != nil {
		return err
	}
	if o.dryRun {
		if o.json {
			if err := writeJSON(o.stdout, plan); err != nil {
				return err
			}
		} else {
			printPlan(o.stdout, o.stderr, plan)
		}
		return resultExit(plan.FailureResults())
	}
	if !o.json && !o.quiet {
		for _, w := range plan.Warnings {
			fmt.Fprintln(o.stderr, "sysextctl: warning:", w)
		}
	}
	results := e.eng.Apply(ctx, plan)
	e.eng.RecordHistory(plan.Verb, engine.HistoryByCLI, results)
	if o.json {
		if err := writeJSON(o.stdout, struct {
			Verb     string          `json:"verb"`
			Results  []engine.Result `json:"results"`
			Warnings []string        `json:"warnings"`
		}{verb, nonNilResults(results), plan.Warnings}); err != nil {
			return err
		}
	} else {
		printResults(o.stdout, o.stderr, results, o.quiet)
	}
	return resultExit(results)
}

// resultExit maps results to SPEC §10 exit codes: 4 when every failure was
// the network or a rate limit, 3 when some steps succeeded, else 1.
func resultExit(results []engine.Result) error {
	ok, bad, networkOnly := engine.Summary(results)
	switch {
	case bad == 0:
		return nil
	case networkOnly:
		return &exitError{code: ExitNetwork, err: fmt.Errorf("%d extension(s) failed: network or rate limit", bad),
			hint: "check the network (HTTPS_PROXY behind a proxy); set GITHUB_TOKEN for GitHub's higher rate limit; `sysextctl list --offline` shows what is installed"}
	case ok > 0:
		return &exitError{code: ExitPartial, err: fmt.Errorf("%d of %d extension(s) failed", bad, ok+bad)}
	default:
		return &exitError{code: ExitFailure, err: fmt.Errorf("%d extension(s) failed", bad)}
	}
}

// printPlan prints what would change on w, and what could not be planned
// on stderr ("nothing to do" only when everything was planned).
func printPlan(w, stderr io.Writer, p *engine.Plan) {
	if p.Changes() == 0 && len(p.Failures) == 0 {
		fmt.Fprintln(w, "nothing to do")
	}
	for _, s := range p.Steps {
		for _, r := range s.Removes {
			fmt.Fprintf(w, "would remove %s (conflicts with %s)\n", r, s.Name)
		}
		switch s.Op {
		case engine.OpInstall:
			fmt.Fprintf(w, "would install %s %s (%s)\n", s.Name, s.To, s.Reason)
		case engine.OpUpdate:
			fmt.Fprintf(w, "would update %s %s -> %s (%s)\n", s.Name, dash(s.From), s.To, s.Reason)
		case engine.OpRemove:
			fmt.Fprintf(w, "would remove %s %s\n", s.Name, s.From)
		default:
			fmt.Fprintf(w, "%s: %s\n", s.Name, s.Reason)
		}
	}
	for _, f := range p.Failures {
		fmt.Fprintf(stderr, "sysextctl: %s: cannot plan: %s\n", f.Name, f.Error)
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

func printResults(stdout, stderr io.Writer, results []engine.Result, quiet bool) {
	for _, r := range results {
		if !r.OK {
			fmt.Fprintf(stderr, "sysextctl: %s: %s\n", r.Name, r.Error)
			continue
		}
		if quiet {
			continue
		}
		if r.Op == engine.OpNone {
			fmt.Fprintf(stdout, "%s: %s\n", r.Name, r.Message)
			continue
		}
		fmt.Fprintln(stdout, r.Message)
		if r.Action != "" && r.Action != "none" {
			fmt.Fprintf(stdout, "%s: applied update action %s\n", r.Name, r.Action)
		}
	}
}

func nonNilResults(r []engine.Result) []engine.Result {
	if r == nil {
		return []engine.Result{}
	}
	return r
}

// recoverAndAdopt runs, under the lock, what must precede any plan
// (engine.Start): undo an interrupted step, then take over sysext.pl's
// leftovers.
func (o *options) recoverAndAdopt(ctx context.Context, e *env) error {
	err := e.eng.Start(ctx, engine.StartOptions{
		OnRecovered: func(rec engine.Recovery, _ error) {
			if rec.Undone != nil {
				fmt.Fprintf(o.stderr, "sysextctl: undid the interrupted %s of %s\n", rec.Undone.Op, rec.Undone.Name)
			}
		},
		OnAdopted: func(ad engine.Adoption) {
			if len(ad.Adopted) > 0 {
				fmt.Fprintf(o.stderr, "sysextctl: adopted sysext.pl images: %s\n", strings.Join(ad.Adopted, ", "))
			}
		},
	})
	if err != nil {
		return exitWith(ExitFailure, err)
	}
	return nil
}
