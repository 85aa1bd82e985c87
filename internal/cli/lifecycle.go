package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// newLifecycleCmds are hold, unhold, pin, unpin and rollback.
func newLifecycleCmds(o *options) []*cobra.Command {
	record := func(use, short string, args cobra.PositionalArgs, fn func(e *env, args []string) (string, error)) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, args []string) error {
			if c, ok := o.daemon(cmd.Context()); ok {
				defer c.Close()
				method := strings.ToUpper(use[:1]) + use[1:strings.IndexByte(use, ' ')]
				return o.viaDaemonRecord(cmd.Context(), c, method, args[0])
			}
			return o.locked(cmd.Context(), func(ctx context.Context, e *env) error {
				msg, err := fn(e, args)
				if err != nil {
					return exitWith(ExitFailure, err)
				}
				if !o.quiet {
					fmt.Fprintln(o.stdout, msg)
				}
				return nil
			})
		}}
	}
	hold := record("hold NAME", "Keep update, auto and sysextd away from an installed extension", cobra.ExactArgs(1),
		func(e *env, a []string) (string, error) {
			return a[0] + " held", e.eng.SetHold(a[0], true, "held by the operator")
		})
	unhold := record("unhold NAME", "Let update, auto and sysextd change an extension again", cobra.ExactArgs(1),
		func(e *env, a []string) (string, error) {
			return a[0] + " no longer held", e.eng.SetHold(a[0], false, "")
		})
	unpin := record("unpin NAME", "Let an extension follow its newest release again", cobra.ExactArgs(1),
		func(e *env, a []string) (string, error) {
			return a[0] + " no longer pinned", e.eng.SetPin(a[0], "")
		})
	pin := &cobra.Command{
		Use:   "pin NAME VERSION",
		Short: "Install the release of an extension with PACKAGE_VERSION VERSION and stay on it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, ok := o.daemonUnlessDryRun(cmd.Context()); ok {
				defer c.Close()
				return o.viaDaemonMutate(cmd.Context(), c, "Pin", map[string]string{"name": args[0], "version": args[1]})
			}
			return o.locked(cmd.Context(), func(ctx context.Context, e *env) error {
				plan, err := e.eng.PinPlan(ctx, args[0], args[1], o.dryRun)
				return o.applyPlan(ctx, e, "pin", plan, err)
			})
		},
	}
	rollback := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Go back to the image the last update replaced (offline) and hold the extension there",
		Long: "rollback reinstalls the image the last successful update of NAME replaced, kept in\n" +
			"/var/lib/sysextd/previous, with the same checks and update action as any update and no network.\n" +
			"The extension is then held: `sysextctl unhold NAME` lets updates resume.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, ok := o.daemonUnlessDryRun(cmd.Context()); ok {
				defer c.Close()
				return o.viaDaemonMutate(cmd.Context(), c, "Rollback", map[string]string{"name": args[0]})
			}
			return o.locked(cmd.Context(), func(ctx context.Context, e *env) error {
				plan, err := e.eng.RollbackPlan(ctx, args[0])
				return o.applyPlan(ctx, e, "rollback", plan, err)
			})
		},
	}
	for _, c := range []*cobra.Command{pin, rollback} {
		c.Flags().BoolVar(&o.dryRun, "dry-run", false, "show the plan, change nothing")
	}
	cmds := []*cobra.Command{hold, unhold, pin, unpin, rollback}
	for _, c := range cmds {
		c.Flags().BoolVar(&o.noBlock, "no-block", false, "fail at once when another process holds the lock")
	}
	return cmds
}

// locked builds the environment, refuses on a broken manifest, takes the
// lock (unless --dry-run) and runs fn.
func (o *options) locked(ctx context.Context, fn func(ctx context.Context, e *env) error) error {
	e, err := o.newEnv(ctx)
	if err != nil {
		return err
	}
	defer e.close()
	if e.manifestErr != nil {
		return exitWith(ExitUsage, fmt.Errorf("%w\nrefusing to change anything until the manifest is fixed", e.manifestErr))
	}
	if !o.dryRun {
		release, err := o.lock(ctx, e)
		if err != nil {
			return err
		}
		defer release()
	}
	return fn(ctx, e)
}
