package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/fetch"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/merge"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/units"
)

// env is one command's wiring: the engine and what made it.
type env struct {
	o           *options
	root        rootfs.Root
	eng         *engine.Engine
	manifestErr error // a broken manifest: read-only verbs go on, mutating verbs refuse
	close       func()
}

// newEnv loads manifests and facts and builds the engine. It fails only on
// what makes every verb impossible.
func (o *options) newEnv(ctx context.Context) (*env, error) {
	log := o.logger()
	root := rootfs.New(o.root)
	if !root.IsHost() {
		if fi, err := os.Stat(root.Dir()); err != nil || !fi.IsDir() {
			return nil, exitWith(ExitUsage, fmt.Errorf("--root %s: not a directory", o.root))
		}
	}
	e := &env{o: o, root: root, close: func() {}}
	set, warnings, err := manifest.Load(root)
	for _, w := range warnings {
		fmt.Fprintln(o.stderr, "sysextctl:", w.String())
	}
	if err != nil {
		e.manifestErr = err
	}

	var um *units.Manager
	if root.IsHost() {
		if m, err := units.Connect(ctx); err == nil {
			um = m
			e.close = m.Close
		} else {
			log.Debug("no service manager", "err", err)
		}
	}
	var f *facts.Facts
	if o.factsFile != "" {
		if f, err = facts.Load(o.factsFile); err != nil {
			return nil, exitWith(ExitUsage, err)
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
			return nil, err
		}
	}

	token, err := o.token()
	if err != nil {
		return nil, exitWith(ExitUsage, err)
	}
	api := o.githubAPI
	if api == "" {
		api = o.getenv("SYSEXT_GITHUB_API")
	}
	fopts := fetch.Options{APIBase: api, Token: token, CacheDir: root.Path(rootfs.CacheDir), MaxSize: o.maxSize, Logger: log}
	if o.isTerminal && !o.quiet && !o.json {
		fopts.Progress = o.stderr
	}
	src, err := fetch.New(fopts)
	if err != nil {
		return nil, exitWith(ExitUsage, err)
	}
	eng := &engine.Engine{
		Root: root, Manifests: set, Facts: f, Source: src,
		Sysext: &merge.Sysext{Root: root, Logger: log}, Log: log,
	}
	if um != nil {
		eng.Units = um
	}
	e.eng = eng
	return e, nil
}

// token finds the GitHub token: --github-token-file, $GITHUB_TOKEN, then
// the systemd credential github-token. Its value is never logged.
func (o *options) token() (string, error) {
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("reading token file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if t := o.getenv("GITHUB_TOKEN"); t != "" {
		return strings.TrimSpace(t), nil
	}
	if dir := o.getenv("CREDENTIALS_DIRECTORY"); dir != "" {
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
