package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// env is one command's wiring: the engine and what made it.
type env struct {
	root        rootfs.Root
	eng         *engine.Engine
	manifestErr error // a broken manifest: read-only verbs go on, mutating verbs refuse
	close       func()
}

// newEnv loads manifests and facts and builds the engine. It fails only on
// what makes every verb impossible.
func (o *options) newEnv(ctx context.Context) (*env, error) {
	root := rootfs.New(o.root)
	if !root.IsHost() {
		if fi, err := os.Stat(root.Dir()); err != nil || !fi.IsDir() {
			return nil, exitWith(ExitUsage, fmt.Errorf("--root %s: not a directory", o.root))
		}
	}
	token, err := app.Token(o.tokenFile, o.getenv)
	if err != nil {
		return nil, exitWith(ExitUsage, err)
	}
	api := o.githubAPI
	if api == "" {
		api = o.getenv("SYSEXT_GITHUB_API")
	}
	srcs, err := app.LoadSources(root)
	if err != nil {
		return nil, exitWith(ExitUsage, err)
	}
	la := o.loadAuth()
	if la.err != nil {
		return nil, exitWith(ExitUsage, la.err)
	}
	if !o.quiet {
		for _, w := range la.warns {
			fmt.Fprintln(o.stderr, "sysextctl: warning:", w)
		}
	}
	srcs.SetLogins(la.logins)
	srcs.GitHubEnterprise = append(srcs.GitHubEnterprise, o.enterprise...)
	if err := srcs.Check(); err != nil {
		return nil, exitWith(ExitUsage, fmt.Errorf("--github-enterprise: %w", err))
	}
	cfg := app.Config{Root: root, GitHubAPI: api, Token: token, FactsFile: o.factsFile, MaxSize: o.maxSize, Logger: o.logger(), Sources: srcs}
	if o.isTerminal && !o.quiet && !o.json {
		cfg.Progress = o.stderr
	}
	a, err := app.New(ctx, cfg)
	var fe *app.FactsError
	if errors.As(err, &fe) {
		return nil, exitWith(ExitUsage, err)
	}
	if err != nil {
		return nil, exitWith(ExitFailure, err)
	}
	if !o.quiet {
		for _, w := range a.ManifestWarnings {
			fmt.Fprintln(o.stderr, "sysextctl:", w.String())
		}
		if a.ManifestErr == nil && len(a.Engine.Manifests.Files) == 0 {
			fmt.Fprintf(o.stderr, "sysextctl: note: no manifest found; looked for %s\n", searched(root))
		}
	}
	return &env{root: root, eng: a.Engine, manifestErr: a.ManifestErr, close: a.Close}, nil
}

// loadedAuth is the outcome of reading the mirror and registry logins
// (app.LoadLogins).
type loadedAuth struct {
	logins app.Logins
	warns  []string
	err    error
}

// loadAuth reads auth.conf under --root once per command: mirror --to
// needs it before the environment is built, and the environment again.
func (o *options) loadAuth() loadedAuth {
	if o.mirrorAuth == nil {
		l, w, err := app.LoadLogins(rootfs.New(o.root), o.getenv, true)
		o.mirrorAuth = &loadedAuth{l, w, err}
	}
	return *o.mirrorAuth
}

// searched names the manifest files looked for, under a --root when set.
func searched(root rootfs.Root) string {
	paths := []string{root.Path(rootfs.VendorManifest), root.Path(rootfs.LocalManifest), root.Path(rootfs.DropinDir) + "/*.toml"}
	return strings.Join(paths, ", ")
}

// manifestsRead says which manifest files this run read.
func (e *env) manifestsRead() string {
	files := e.eng.Manifests.Files
	if len(files) == 0 {
		return "no manifest found; looked for " + searched(e.root)
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = e.root.Path(f)
	}
	return "manifests read: " + strings.Join(paths, ", ")
}
