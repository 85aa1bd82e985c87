// Package daemon is sysextd: at start it makes sure installed extensions
// are merged and runs auto, then checks for updates on a schedule, reacts to
// manifest changes, backs off on failures and reboots only when configured
// to, inside a window.
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// Duration is a time.Duration written as a string ("24h") in TOML; a bare
// number is refused rather than read as nanoseconds.
type Duration struct{ time.Duration }

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	d.Duration = v
	return nil
}

// Config is /etc/sysextd/sysextd.toml.
type Config struct {
	// Interval between update checks; default 24h.
	Interval Duration `toml:"interval"`
	// RandomizedDelay is added to each interval, uniformly in [0, delay);
	// default 1h, so a fleet does not check at the same instant.
	RandomizedDelay Duration `toml:"randomized_delay"`
	// Reboot lets the daemon reboot the host when an update asked for it,
	// inside RebootWindow ("HH:MM-HH:MM", local time; may wrap midnight).
	Reboot       bool   `toml:"reboot"`
	RebootWindow string `toml:"reboot_window"`
	GitHubAPI    string `toml:"github_api"`
	TokenFile    string `toml:"token_file"`
	MaxSize      int64  `toml:"max_size"`
	// Signature is the signature policy of entries that set none:
	// required, if-present or none (docs/trust.md); empty is if-present,
	// and vendor entries are required once the vendor ships a key.
	Signature string `toml:"signature"`
	// Where else releases come from (app.Sources, docs/sources.md).
	GitHubEnterprise []string `toml:"github_enterprise"`
	Mirrors          []string `toml:"mirrors"`
	MirrorsFirst     bool     `toml:"mirrors_first"`
	RequireDigest    bool     `toml:"require_digest"`
	// Insecure lists LAN registries (host:port) reached over plain HTTP.
	Insecure []string `toml:"insecure"`
	// AdminGroup names the group whose members may call the API's
	// mutating methods besides root; empty: root only (docs/api.md).
	AdminGroup string `toml:"admin_group"`
	// Probation and ProbationRestarts: how the units of a change are
	// watched (app.Sources, engine/probation.go).
	Probation         *manifest.Duration `toml:"probation"`
	ProbationRestarts *int               `toml:"probation_restarts"`
	BootTries         int                `toml:"boot_tries"`

	window *window
}

// DefaultConfig is the configuration without a file.
func DefaultConfig() Config {
	return Config{Interval: Duration{24 * time.Hour}, RandomizedDelay: Duration{time.Hour}, RebootWindow: "03:00-05:00"}
}

// LoadConfig reads the daemon configuration under root. A missing file is
// the default; a broken one is an error naming file, line and key.
func LoadConfig(root rootfs.Root) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(root.Path(rootfs.DaemonConfig))
	if errors.Is(err, fs.ErrNotExist) {
		cfg.window, _ = parseWindow(cfg.RebootWindow)
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading %s: %w", rootfs.DaemonConfig, err)
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		var de *toml.DecodeError
		var sm *toml.StrictMissingError
		switch {
		case errors.As(err, &de):
			line, col := de.Position()
			return DefaultConfig(), fmt.Errorf("%s:%d:%d: %s: %v", rootfs.DaemonConfig, line, col, strings.Join(de.Key(), "."), de)
		case errors.As(err, &sm):
			line, col := sm.Errors[0].Position()
			return DefaultConfig(), fmt.Errorf("%s:%d:%d: unknown key %s", rootfs.DaemonConfig, line, col, strings.Join(sm.Errors[0].Key(), "."))
		}
		return DefaultConfig(), fmt.Errorf("%s: %w", rootfs.DaemonConfig, err)
	}
	if cfg.Interval.Duration <= 0 {
		return DefaultConfig(), fmt.Errorf("%s: interval must be positive", rootfs.DaemonConfig)
	}
	if cfg.Signature != "" && cfg.Signature != "required" && cfg.Signature != "if-present" && cfg.Signature != "none" {
		return DefaultConfig(), fmt.Errorf("%s: signature: want required, if-present or none, got %q", rootfs.DaemonConfig, cfg.Signature)
	}
	if len(cfg.Mirrors) == 0 {
		cfg.Mirrors = nil // "mirrors = []" is the default
	}
	// The probation defaults written out mean the defaults (the shipped
	// file shows them commented out).
	if cfg.Probation != nil && cfg.Probation.Duration == engine.DefaultProbation {
		cfg.Probation = nil
	}
	if cfg.ProbationRestarts != nil && *cfg.ProbationRestarts == engine.DefaultProbationRestarts {
		cfg.ProbationRestarts = nil
	}
	if cfg.BootTries == engine.DefaultBootTries {
		cfg.BootTries = 0
	}
	if len(cfg.Insecure) == 0 {
		cfg.Insecure = nil // "insecure = []" is the default
	}
	if len(cfg.GitHubEnterprise) == 0 {
		cfg.GitHubEnterprise = nil
	}
	if err := cfg.sources().Check(); err != nil {
		return DefaultConfig(), fmt.Errorf("%s: %w", rootfs.DaemonConfig, err)
	}
	w, err := parseWindow(cfg.RebootWindow)
	if err != nil {
		return DefaultConfig(), fmt.Errorf("%s: reboot_window: %w", rootfs.DaemonConfig, err)
	}
	cfg.window = w
	return cfg, nil
}

// window is a daily time range in minutes after midnight.
type window struct{ from, to int }

func parseWindow(s string) (*window, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return nil, fmt.Errorf("want HH:MM-HH:MM, got %q", s)
	}
	from, err1 := parseClock(a)
	to, err2 := parseClock(b)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &window{from, to}, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("want HH:MM, got %q", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// contains reports whether t's local clock time is inside the window.
func (w *window) contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if w.from <= w.to {
		return m >= w.from && m < w.to
	}
	return m >= w.from || m < w.to
}

// next returns the next start of the window after t (t itself if inside).
func (w *window) next(t time.Time) time.Time {
	if w.contains(t) {
		return t
	}
	start := time.Date(t.Year(), t.Month(), t.Day(), w.from/60, w.from%60, 0, 0, t.Location())
	if !start.After(t) {
		start = start.AddDate(0, 0, 1)
	}
	return start
}

// sources is the source part of the configuration.
func (c Config) sources() app.Sources {
	return app.Sources{GitHubEnterprise: c.GitHubEnterprise, Mirrors: c.Mirrors, MirrorsFirst: c.MirrorsFirst, RequireDigest: c.RequireDigest,
		Signature: c.Signature, Insecure: c.Insecure, Probation: c.Probation, ProbationRestarts: c.ProbationRestarts, BootTries: c.BootTries}
}
