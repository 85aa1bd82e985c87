package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/login1"
	slogjournal "github.com/systemd/slog-journal"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// Main parses sysextd's flags and runs it; it returns the exit code.
func Main(ctx context.Context, args []string, stderr io.Writer, version string) int {
	fs := flag.NewFlagSet("sysextd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "/", "operate on the tree under `DIR`")
	once := fs.Bool("once", false, "activate, run auto once and exit")
	bootCheck := fs.Bool("boot-check", false, "count this boot against unconfirmed changes and undo those out of tries, offline, before the merge; then exit (sysextd-boot-check.service)")
	verbose := fs.Bool("v", false, "log debug messages")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sysextd [-root DIR] [-once | -boot-check] [-v] [-version]\n\n"+
			"Keeps systemd system extensions merged, installs what the hardware needs and\n"+
			"updates them on a schedule. Runs as sysextd.service; see sysextd(8).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stderr, "sysextd", version)
		return 0
	}
	log := newLogger(stderr, *verbose)
	r := rootfs.New(*root)
	d := &Daemon{Root: r, Log: log, Getenv: os.Getenv, Version: version, Notify: func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Debug("sd_notify", "err", err)
		}
	}}
	if r.IsHost() {
		d.Rebooter = func(ctx context.Context) error {
			c, err := login1.New()
			if err != nil {
				return fmt.Errorf("connecting to logind: %w", err)
			}
			defer c.Close()
			c.Reboot(false)
			return nil
		}
	}
	if *bootCheck {
		if err := d.BootCheck(ctx); err != nil {
			log.Error("boot check failed: "+err.Error(), "err", err)
			return 1
		}
		return 0
	}
	log.Info("starting", "version", version, "root", r.Dir())
	if err := d.Run(ctx, *once); err != nil {
		log.Error("stopped: "+err.Error(), "err", err)
		return 1
	}
	return 0
}

var journalKey = regexp.MustCompile(`[^A-Z0-9_]`)

// newLogger logs to the journal with fields (EXTENSION, VERSION, ACTION)
// when stderr is connected to it, else as text to stderr.
func newLogger(stderr io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	if os.Getenv("JOURNAL_STREAM") != "" {
		h, err := slogjournal.NewHandler(&slogjournal.Options{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			a.Key = journalKey.ReplaceAllString(strings.ToUpper(a.Key), "_")
			return a
		}})
		if err == nil {
			return slog.New(h)
		}
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}
