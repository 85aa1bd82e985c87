// Package merge activates system extensions by driving systemd-sysext, and
// tells which extensions are merged right now. It is the only package that
// runs systemd-sysext.
//
// Activation is always `systemd-sysext refresh` (never a bare `merge`, which
// fails when something is merged already). With a Root other than the host,
// --root=DIR is passed; outside a container systemd-sysext then needs /run to
// be a mount point (see docs/systemd-sysext.md).
package merge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spamtagger/sysextd/internal/failpoint"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// DefaultBinary is the systemd-sysext executable looked up in $PATH when
// Sysext.Binary is empty.
const DefaultBinary = "systemd-sysext"

// Sysext runs systemd-sysext against Root. The zero value works on the host.
type Sysext struct {
	Root   rootfs.Root
	Binary string       // default DefaultBinary
	Logger *slog.Logger // default slog.Default()
}

// CommandError is returned when systemd-sysext fails. ExitCode is the
// process's exit code; it is 0 when the process exited 0 but logged errors:
// systemd 252 exits 0 when its merge child fails (for instance when the root
// has no os-release or /run is not a mount point), so an error message on
// stderr is treated as a failure.
type CommandError struct {
	Argv     []string
	ExitCode int
	Stderr   string
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no error output"
	}
	if e.ExitCode == 0 {
		return fmt.Sprintf("running %s: exited 0 but reported errors: %s", strings.Join(e.Argv, " "), msg)
	}
	return fmt.Sprintf("running %s: exit code %d: %s", strings.Join(e.Argv, " "), e.ExitCode, msg)
}

// Refresh runs `systemd-sysext refresh`: it unmerges whatever is merged and
// merges every valid *.raw image found in the extension directories under
// Root. Images whose extension-release does not match the root's os-release
// are skipped silently by systemd-sysext (no error); an image that cannot be
// read at all fails the whole refresh and leaves the previous merge in place.
// Callers that need to know whether an extension became active ask Merged.
// Failures are *CommandError.
//
// A refresh is never cut short by ctx's cancellation: killing
// systemd-sysext between its unmerge and its merge would leave the host
// with nothing merged. It runs detached from ctx, bounded by RefreshTimeout
// (then SIGTERM, and SIGKILL 30 s later).
func (s *Sysext) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RefreshTimeout)
	defer cancel()
	_, err := s.run(ctx, "refresh", "err")
	return err
}

// Why asks systemd-sysext why it left images unmerged: systemd skips an
// image whose extension-release does not match the host without an error,
// and says why only at debug level. It runs one more refresh with debug
// logging (the store is unchanged, so it merges what the last one did)
// and returns systemd's lines about those images, "" when it names none.
// Call it only on a path that refreshes again anyway (a rollback).
func (s *Sysext) Why(ctx context.Context, images []string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RefreshTimeout)
	defer cancel()
	stderr, _ := s.run(ctx, "refresh", "debug")
	return AboutImages(stderr, images)
}

// AboutImages picks systemd's debug lines that give a verdict on one of
// images: lines quoting its name ('NAME'), and verdict lines ("…, refusing.")
// that systemd prints while working on it without naming it (the last
// extension path or extension-release file it mentioned is that image's).
func AboutImages(log string, images []string) string {
	var out []string
	current := ""
	for line := range strings.Lines(log) {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "/extensions/") || strings.Contains(line, "extension-release.") {
			current = ""
			for _, img := range images {
				if strings.Contains(line, "/"+img+".raw") || strings.Contains(line, "/"+img+" ") || strings.Contains(line, "/"+img+"'") || strings.HasSuffix(line, "extension-release."+img) ||
					strings.Contains(line, "extension-release."+img+":") || strings.HasSuffix(line, "/"+img) {
					current = img
				}
			}
		}
		quoted := false
		for _, img := range images {
			quoted = quoted || strings.Contains(line, "'"+img+"'")
		}
		// A verdict naming an extension ("Extension 'X' is for …") is
		// about X only, whatever came before it.
		verdict := current != "" && isVerdict(line) && !strings.Contains(line, "Extension '")
		if (quoted || verdict) && !slices.Contains(out, line) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "; ")
}

// isVerdict reports whether a systemd debug line refuses the image it is
// working on without naming it ("Extension contains '/usr/lib/os-release',
// which is not allowed, refusing."). The other verdicts name the image
// (docs/systemd-sysext.md lists them); "ignoring" and "skipping" lines
// without a name are about other things (a missing /etc/hostname).
func isVerdict(line string) bool {
	return strings.Contains(line, "refusing") || strings.Contains(line, "not allowed")
}

// RefreshTimeout bounds one systemd-sysext refresh. sysextd.service's
// TimeoutStopSec must exceed the engine's protected-step bound, which
// includes refreshes.
const RefreshTimeout = 2 * time.Minute

// Unmerge runs `systemd-sysext unmerge`. It succeeds when nothing is merged.
func (s *Sysext) Unmerge(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RefreshTimeout)
	defer cancel()
	_, err := s.run(ctx, "unmerge", "err")
	return err
}

// argv is the command line run for verb.
func (s *Sysext) argv(verb string) []string {
	bin := s.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	argv := []string{bin}
	if !s.Root.IsHost() {
		argv = append(argv, "--root="+s.Root.Dir())
	}
	return append(argv, verb)
}

func (s *Sysext) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// run runs verb with systemd's log level level ("err" for every real run:
// only errors reach stderr, so that "exit 0 with a message" can be
// recognised as the failure it is; "debug" for Why) and returns stderr.
func (s *Sysext) run(ctx context.Context, verb, level string) (string, error) {
	argv := s.argv(verb)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL="+level, "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second

	start := time.Now()
	err := cmd.Start()
	if err == nil {
		failpoint.Hit(verb + ":running")
		err = cmd.Wait()
	}
	log := s.logger().With("argv", strings.Join(argv, " "), "duration", time.Since(start))
	out := stderr.String()
	if ctx.Err() != nil {
		return out, fmt.Errorf("running %s: %w", strings.Join(argv, " "), ctx.Err())
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		cerr := &CommandError{Argv: argv, ExitCode: exitErr.ExitCode(), Stderr: out}
		log.Debug("systemd-sysext failed", "exit_code", cerr.ExitCode, "stderr", cerr.Stderr)
		return out, cerr
	case err != nil:
		return out, fmt.Errorf("running %s: %w", strings.Join(argv, " "), err)
	case level == "err" && strings.TrimSpace(out) != "":
		log.Debug("systemd-sysext exited 0 with errors", "stderr", out)
		return out, &CommandError{Argv: argv, ExitCode: 0, Stderr: out}
	}
	log.Debug("systemd-sysext done", "stdout", stdout.String())
	return out, nil
}
