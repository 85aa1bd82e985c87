package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/api/client"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/status"
	"github.com/spamtagger/sysextd/internal/termbar"
)

// socketPath is the daemon's API socket: $SYSEXTD_SOCKET (tests, a
// daemon run by hand) or api.Socket.
func (o *options) socketPath() string {
	if p := o.getenv("SYSEXTD_SOCKET"); p != "" {
		return p
	}
	return api.Socket
}

// viaDaemon reports whether this command asks sysextd rather than doing
// the work itself: on the host's own root (no --root given, not even
// --root /) when the API socket exists. The daemon then holds the lock, and history and journal are in
// one place.
func (o *options) viaDaemon() bool {
	if o.root != "/" || (o.rootFlag != nil && o.rootFlag.Changed) {
		return false
	}
	_, err := os.Stat(o.socketPath())
	return err == nil
}

// daemon returns a connection to sysextd when this command should ask it
// (viaDaemon) and it answers; the caller closes it.
func (o *options) daemon(ctx context.Context) (*client.Client, bool) {
	if !o.viaDaemon() {
		return nil, false
	}
	return o.dial(ctx)
}

// daemonUnlessDryRun is daemon, except that a --dry-run plans in-process.
func (o *options) daemonUnlessDryRun(ctx context.Context) (*client.Client, bool) {
	if o.dryRun {
		return nil, false
	}
	return o.daemon(ctx)
}

// dial connects to the daemon; ok is false when nobody answers on the
// socket (sysextd.socket stopped, a stale file): the command then runs
// in-process as without the daemon.
func (o *options) dial(ctx context.Context) (c *client.Client, ok bool) {
	c, err := client.Dial(ctx, o.socketPath())
	if err != nil {
		if o.verbose {
			fmt.Fprintln(o.stderr, "sysextctl: not asking sysextd:", err)
		}
		return nil, false
	}
	return c, true
}

// call runs method on the daemon, waiting while it is Busy unless
// --no-block, and maps its errors to sysextctl's exit codes.
func (o *options) call(ctx context.Context, c *client.Client, method string, in, out any, progress func(api.Progress)) error {
	return clientExit(o.callRaw(ctx, c, method, in, out, progress))
}

// callRaw is call with the daemon's error as it came.
func (o *options) callRaw(ctx context.Context, c *client.Client, method string, in, out any, progress func(api.Progress)) error {
	told := false
	for {
		err := c.Stream(ctx, method, in, progress, out)
		if !client.Is(err, api.ErrBusy) || o.noBlock {
			return err
		}
		if !told {
			fmt.Fprintln(o.stderr, "sysextctl: waiting for another sysextctl or sysextd to finish...")
			told = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// clientExit maps the daemon's typed errors to the exit codes the same
// failure has in-process.
func clientExit(err error) error {
	var ce *client.Error
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	switch ce.Name {
	case api.ErrNoSuchExtension:
		return exitWith(ExitUsage, fmt.Errorf("unknown extension(s): %s", ce.Reason))
	case "org.varlink.service.InvalidParameter":
		return exitWith(ExitUsage, ce)
	case api.ErrNetwork:
		return &exitError{code: ExitNetwork, err: ce, hint: hintNetwork}
	case api.ErrBusy:
		return exitWith(ExitFailure, engine.ErrLocked)
	case api.ErrPermissionDenied:
		return &exitError{code: ExitFailure, err: ce, hint: "changes need root or membership in sysextd.toml's admin_group"}
	}
	return exitWith(ExitFailure, ce)
}

// verbMethods are the API methods of the mutating verbs.
var verbMethods = map[string]string{engine.VerbInstall: "Install", engine.VerbRemove: "Remove", engine.VerbUpdate: "Update", engine.VerbAuto: "Auto"}

// viaDaemonRecord runs Hold, Unhold or Unpin on the daemon and prints its
// message as the in-process verb does.
func (o *options) viaDaemonRecord(ctx context.Context, c *client.Client, method, name string) error {
	in := map[string]string{"name": name}
	var out struct {
		Message string `json:"message"`
	}
	err := o.callRaw(ctx, c, method, in, &out, nil)
	if client.Is(err, api.ErrNoSuchExtension) {
		// In-process these verbs say the name is not installed, exit 1.
		return exitWith(ExitFailure, fmt.Errorf("%s is not installed", name))
	}
	if err != nil {
		return clientExit(err)
	}
	if !o.quiet {
		fmt.Fprintln(o.stdout, out.Message)
	}
	return nil
}

// viaDaemonMutate runs a plan-making verb (install, remove, update, auto,
// pin, rollback) on the daemon and reports it as applyPlan does.
func (o *options) viaDaemonMutate(ctx context.Context, c *client.Client, method string, in any) error {
	var out api.Outcome
	bar := o.progressBar()
	err := o.call(ctx, c, method, in, &out, bar.update)
	bar.end()
	if err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(o.stdout, struct {
			Verb     string          `json:"verb"`
			Results  []engine.Result `json:"results"`
			Warnings []string        `json:"warnings"`
		}{out.Verb, nonNilResults(out.Results), out.Warnings}); err != nil {
			return err
		}
	} else {
		if !o.quiet {
			for _, w := range out.Warnings {
				fmt.Fprintln(o.stderr, "sysextctl: warning:", w)
			}
		}
		printResults(o.stdout, o.stderr, out.Results, o.quiet)
	}
	return outcomeExit(out)
}

// outcomeExit is resultExit for results that crossed the socket (their
// error values did not: the daemon says whether all were the network).
func outcomeExit(out api.Outcome) error {
	ok, bad := 0, 0
	for _, r := range out.Results {
		if r.OK {
			ok++
		} else {
			bad++
		}
	}
	switch {
	case bad == 0:
		return nil
	case out.NetworkOnly:
		return &exitError{code: ExitNetwork, err: fmt.Errorf("%d extension(s) failed: network or rate limit", bad),
			hint: "check the network (HTTPS_PROXY behind a proxy); set GITHUB_TOKEN for GitHub's higher rate limit; `sysextctl list --offline` shows what is installed"}
	case ok > 0:
		return &exitError{code: ExitPartial, err: fmt.Errorf("%d of %d extension(s) failed", bad, ok+bad)}
	default:
		return &exitError{code: ExitFailure, err: fmt.Errorf("%d extension(s) failed", bad)}
	}
}

// clientStatus is status answered by the daemon, with the exit code of
// the in-process status: 4 when a lookup failed on the network.
func (o *options) clientStatus(ctx context.Context, c *client.Client, refresh bool) error {
	var out struct {
		Status         *status.Report         `json:"status"`
		LookupFailures []engine.LookupFailure `json:"lookupFailures"`
	}
	if err := o.call(ctx, c, "Status", map[string]bool{"refresh": refresh}, &out, nil); err != nil {
		return err
	}
	if out.Status == nil {
		return exitWith(ExitFailure, errors.New("sysextd answered Status without a status"))
	}
	if err := o.printStatus(out.Status, out.LookupFailures); err != nil {
		return err
	}
	return lookupExit(out.LookupFailures)
}

// bar draws a download's progress on a terminal once it has run for 2 s:
// a short download stays silent, and --json, --quiet or a pipe never see it.
type bar struct {
	w       io.Writer
	name    string
	started time.Time
	drawn   bool
	last    time.Time
}

func (o *options) progressBar() *bar {
	if !o.isTerminal || o.json || o.quiet {
		return nil
	}
	return &bar{w: o.stderr}
}

func (b *bar) update(p api.Progress) {
	if b == nil {
		return
	}
	if p.Phase != string(engine.PhaseDownload) || p.Name != b.name {
		b.end()
		b.name, b.started = p.Name, time.Now()
		if p.Phase != string(engine.PhaseDownload) {
			b.name = ""
		}
		return
	}
	now := time.Now()
	if now.Sub(b.started) < 2*time.Second || now.Sub(b.last) < 100*time.Millisecond {
		return
	}
	b.last, b.drawn = now, true
	termbar.Draw(b.w, p.Name, p.Done, p.Total)
}

// end finishes a drawn bar's line.
func (b *bar) end() {
	if b != nil && b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
