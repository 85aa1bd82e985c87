// Package app wires the engine's dependencies for one run, the same way for
// sysextctl and sysextd: manifests and facts under the root, the release
// sources (GitHub and GHES with their cache, mirrors, local files) behind
// one source.Router, systemd-sysext, and the service manager when the root
// is the running host.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/merge"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/units"
)

// Config says how to build an App.
type Config struct {
	Root      rootfs.Root
	GitHubAPI string // "" means source.DefaultGitHubAPI
	Token     string
	FactsFile string // replaces detection when set
	MaxSize   int64
	Progress  io.Writer
	// OnProgress hears the bytes of each image download (the daemon's API).
	OnProgress func(asset string, done, total int64)
	Logger     *slog.Logger
	// Manifests, when set, is used instead of loading the manifests (the
	// daemon keeps its last good set when a file breaks).
	Manifests *manifest.Set
	// Sources says where else releases come from (sysextd.toml).
	Sources Sources
	// EnterpriseAPI overrides the API base of a GHES host (tests).
	EnterpriseAPI map[string]string
	// NoServiceManager leaves the engine without Units even on the host
	// (sysextd -boot-check runs before D-Bus and touches no unit).
	NoServiceManager bool
}

// App is one run's engine plus what the caller needs to report.
type App struct {
	Engine *engine.Engine
	// ManifestWarnings are unknown keys and the like; ManifestErr is a
	// broken file (the Engine's set then holds the intact files' entries).
	ManifestWarnings []manifest.Problem
	ManifestErr      error
	close            func()
}

// Close releases the D-Bus connection, if any.
func (a *App) Close() { a.close() }

// FactsError is a --facts file that cannot be used.
type FactsError struct{ Err error }

func (e *FactsError) Error() string { return e.Err.Error() }
func (e *FactsError) Unwrap() error { return e.Err }

// New builds an App. Errors are about the configuration (a bad facts file,
// API base) or unreadable host facts.
func New(ctx context.Context, cfg Config) (*App, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root := cfg.Root
	a := &App{close: func() {}}
	set := cfg.Manifests
	if set == nil {
		set, a.ManifestWarnings, a.ManifestErr = manifest.Load(root)
	}

	var um *units.Manager
	if root.IsHost() && !cfg.NoServiceManager {
		if m, err := units.Connect(ctx); err == nil {
			um = m
			a.close = m.Close
		} else {
			log.Debug("no service manager", "err", err)
		}
	}
	var f *facts.Facts
	var err error
	if cfg.FactsFile != "" {
		if f, err = facts.Load(cfg.FactsFile); err != nil {
			a.close()
			return nil, &FactsError{Err: err}
		}
	} else {
		var virt []facts.VirtDetector
		if um != nil {
			virt = append(virt, um.Virtualization)
		}
		virt = append(virt, facts.DetectVirtCommand)
		var flags []string
		for _, n := range set.Names() {
			if p := set.Get(n).IfFile; p != "" {
				flags = append(flags, p)
			}
		}
		if f, err = facts.Gather(ctx, root, facts.Options{Files: flags, Virt: virt, Logger: log}); err != nil {
			a.close()
			return nil, err
		}
	}
	src, err := newRouter(cfg, log)
	if err != nil {
		a.close()
		return nil, err
	}
	a.Engine = &engine.Engine{
		Root: root, Manifests: set, Facts: f, Source: src,
		Sysext: &merge.Sysext{Root: root, Logger: log}, Log: log,
		SignatureDefault: cfg.Sources.Signature,
		Probation:        cfg.Sources.ProbationConfig(),
	}
	if um != nil {
		a.Engine.Units = um
	}
	return a, nil
}

// Token finds the GitHub token: file (when set), then $GITHUB_TOKEN, then
// the systemd credential github-token. Its value is never logged.
func Token(file string, getenv func(string) string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading token file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if t := getenv("GITHUB_TOKEN"); t != "" {
		return strings.TrimSpace(t), nil
	}
	if dir := getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, "github-token"))
		if err == nil {
			return strings.TrimSpace(string(b)), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("reading credential github-token: %w", err)
		}
	}
	return "", nil
}
