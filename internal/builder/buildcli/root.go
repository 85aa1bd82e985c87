// Package buildcli is the sysext-build command tree: build, check and
// publish. Exit codes: 0 success (check: up to date), 1 check says
// rebuild, 2 usage, 3 failure.
package buildcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/builder/build"
	"github.com/spamtagger/sysextd/internal/builder/debian"
	"github.com/spamtagger/sysextd/internal/builder/ocibase"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitRebuild = 1
	ExitUsage   = 2
	ExitFailure = 3
)

// DefaultCacheDir is where Packages indices and .debs are kept for root;
// SYSEXT_BUILD_CACHE or --cache override it. Other users default to
// $XDG_CACHE_HOME/sysext-build, else ~/.cache/sysext-build.
const DefaultCacheDir = "/var/cache/sysext-build"

// defaultCache is DefaultCacheDir for root, else the user's cache
// directory (XDG base directory specification).
func defaultCache(getenv func(string) string, euid int) (string, error) {
	if euid == 0 {
		return DefaultCacheDir, nil
	}
	if d := getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "sysext-build"), nil
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".cache", "sysext-build"), nil
	}
	return "", &exitError{ExitUsage, errors.New("no cache directory: set HOME, XDG_CACHE_HOME or SYSEXT_BUILD_CACHE, or pass --cache")}
}

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// options shared by the commands that read the archive.
type archiveOptions struct {
	mirror, security, keyring, cache string
	bases                            []string
	insecureRegistry                 bool
	ignoreValidUntil                 bool
	getenv                           func(string) string
	cmd                              *cobra.Command
}

func (a *archiveOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.mirror, "mirror", debian.DefaultMirror, "Debian archive URL")
	f.StringVar(&a.security, "security-mirror", debian.DefaultSecurityMirror, "Debian security archive URL (DIST-security); empty to leave it out")
	f.StringVar(&a.keyring, "keyring", "", "OpenPGP keyring that signs the archive's InRelease (default: the base's, then the host's debian-archive-keyring)")
	f.StringVar(&a.cache, "cache", "", "download cache (default $SYSEXT_BUILD_CACHE, else "+DefaultCacheDir+" for root, $XDG_CACHE_HOME/sysext-build or ~/.cache/sysext-build for others)")
	f.StringArrayVar(&a.bases, "base", nil, "base the extension adds to: a root directory, a dpkg status file or oci:IMAGE; DIST=BASE for one dist (repeatable)")
	f.BoolVar(&a.insecureRegistry, "insecure-registry", false, "allow plain HTTP for oci: bases (tests)")
	f.BoolVar(&a.ignoreValidUntil, "ignore-valid-until", false, "accept an InRelease past its Valid-Until (snapshot archives, testing dists); a stale or replayed archive then goes undetected")
	a.cmd = cmd
}

func (a *archiveOptions) archive(bases map[string]*build.Base) (*debian.Archive, error) {
	cache := a.cache
	if cache == "" {
		cache = a.getenv("SYSEXT_BUILD_CACHE")
	}
	if cache == "" {
		var err error
		if cache, err = defaultCache(a.getenv, os.Geteuid()); err != nil {
			return nil, err
		}
	}
	paths := []string{a.keyring}
	if a.keyring == "" {
		paths = nil
		for _, b := range bases {
			if b.Dir == "" {
				continue
			}
			dir := b.Dir
			paths = append(paths, filepath.Join(dir, "usr/share/keyrings/debian-archive-keyring.pgp"),
				filepath.Join(dir, "usr/share/keyrings/debian-archive-keyring.gpg"))
		}
		paths = append(paths, "/usr/share/keyrings/debian-archive-keyring.pgp", "/usr/share/keyrings/debian-archive-keyring.gpg")
	}
	kr, _, err := debian.LoadKeyring(paths...)
	if err != nil {
		return nil, err
	}
	arch := &debian.Archive{Mirror: a.mirror, SecurityMirror: a.security, Keyring: kr, CacheDir: cache}
	if a.ignoreValidUntil {
		stderr := io.Discard
		if a.cmd != nil {
			stderr = a.cmd.ErrOrStderr()
		}
		fmt.Fprintln(stderr, "WARNING: --ignore-valid-until: the archive's Valid-Until is not checked, so a stale or replayed archive is not detected; use it only for snapshot archives and testing")
		arch.IgnoreValidUntil = true
		arch.Warn = func(msg string) { fmt.Fprintln(stderr, msg) }
	}
	return arch, nil
}

// prepare loads every --base and the archive indices they need, in a
// temporary directory that cleanup removes.
func (a *archiveOptions) prepare(ctx context.Context) (bases map[string]*build.Base, arch *debian.Archive, cleanup func(), err error) {
	tmp, err := os.MkdirTemp("", "sysext-build-")
	if err != nil {
		return nil, nil, nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	if bases, err = a.loadBases(ctx, tmp); err == nil {
		arch, err = a.archive(bases)
	}
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return bases, arch, cleanup, nil
}

// loadBases reads every --base. An "oci:REF" base is pulled and the
// files a build reads are extracted into a directory under tmp.
func (a *archiveOptions) loadBases(ctx context.Context, tmp string) (map[string]*build.Base, error) {
	if len(a.bases) == 0 {
		return nil, &exitError{ExitUsage, errors.New("--base is required: a root directory (e.g. the vendor image unpacked), its var/lib/dpkg/status, or oci:IMAGE")}
	}
	out := map[string]*build.Base{}
	for i, b := range a.bases {
		dist, path, ok := strings.Cut(b, "=")
		if !ok || strings.Contains(dist, ":") {
			dist, path = "", b
		}
		if ref, ok := strings.CutPrefix(path, "oci:"); ok {
			dir := filepath.Join(tmp, fmt.Sprintf("base-%d", i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			if err := ocibase.Pull(ctx, ref, "", dir, a.insecureRegistry); err != nil {
				return nil, err
			}
			path = dir
		}
		base, err := build.LoadBase(path)
		if err != nil {
			return nil, err
		}
		out[dist] = base
	}
	return out, nil
}

// NewRootCmd builds the command tree.
func NewRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:           "sysext-build",
		Short:         "Build, check and publish system extensions from Debian packages",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{ExitUsage, err} })
	root.AddCommand(newBuildCmd(getenv), newCheckCmd(getenv), newPublishCmd(getenv), newPhaseCmd(getenv), newWithdrawCmd(getenv))
	return root
}

// Run executes args and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := NewRootCmd(stdout, stderr, os.Getenv)
	cmd.InitDefaultHelpCmd()
	cmd.InitDefaultCompletionCmd()
	typeUsageErrors(cmd)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err != nil && !isCompletionRequest(args) {
		// The one error cobra does not let a hook type: an argument
		// the root takes for a command it does not have.
		if _, _, ferr := cmd.Find(args); ferr != nil {
			err = &exitError{ExitUsage, ferr}
		}
	}
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.code != ExitRebuild {
			fmt.Fprintln(stderr, "sysext-build:", err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "sysext-build:", err)
	return ExitFailure
}

// isCompletionRequest is true for the hidden command the shell completion
// scripts run; cobra adds it to the tree only while executing it.
func isCompletionRequest(args []string) bool {
	return len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd)
}

// typeUsageErrors makes every command of the tree report cobra's argument
// errors as usage errors (flag errors are typed by the root's
// FlagErrorFunc, an unknown command by Run), so that no exit code is chosen by an error's text. Call
// it once the tree is complete (completion and help commands included).
func typeUsageErrors(c *cobra.Command) {
	if v := c.Args; v != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := v(cmd, args); err != nil {
				return &exitError{ExitUsage, err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		typeUsageErrors(sub)
	}
}

func metadataArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return "metadata.json"
}
