//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// guestPath is PATH for commands run on the host on behalf of the harness and
// inside the container.
const guestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cmdError describes a failed command with its argv, exit code and stderr.
type cmdError struct {
	argv   []string
	code   int
	stderr string
	err    error
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("running %q: exit %d: %v: %s", e.argv, e.code, e.err, strings.TrimSpace(e.stderr))
}

func (e *cmdError) Unwrap() error { return e.err }

// run runs argv on the host and returns its stdout. A non-zero exit becomes a
// *cmdError carrying stderr.
func run(ctx context.Context, env []string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		code := -1
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		}
		return stdout.String(), &cmdError{argv: argv, code: code, stderr: stderr.String(), err: err}
	}
	return stdout.String(), nil
}

// runIn is run with a working directory.
func runIn(t testing.TB, dir string, env []string, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		code := -1
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		}
		return stdout.String(), &cmdError{argv: argv, code: code, stderr: stderr.String(), err: err}
	}
	return stdout.String(), nil
}

// mustRun is run for setup steps that cannot fail without failing the test.
func mustRun(t testing.TB, ctx context.Context, argv ...string) string {
	t.Helper()
	out, err := run(ctx, nil, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireRoot skips the test when it does not run as root.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: debootstrap, mounts and systemd-nspawn")
	}
}

// tool is a host binary the harness needs and the Debian package providing it.
type tool struct{ bin, pkg string }

var hostTools = []tool{
	{"debootstrap", "debootstrap"},
	{"systemd-nspawn", "systemd-container"},
	{"mksquashfs", "squashfs-tools"},
	{"nsenter", "util-linux"},
	{"unshare", "util-linux"},
}

// ensureTools installs with apt-get whatever host tool is missing.
func ensureTools(t testing.TB) {
	t.Helper()
	var missing []string
	for _, tl := range hostTools {
		if _, err := exec.LookPath(tl.bin); err != nil {
			missing = append(missing, tl.pkg)
		}
	}
	if len(missing) == 0 {
		return
	}
	t.Logf("installing host tools: %v", missing)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	args := append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, missing...)
	if _, err := run(t.Context(), env, args...); err != nil {
		// Stale or missing package lists are the usual cause: refresh once.
		if _, uerr := run(t.Context(), env, "apt-get", "update"); uerr != nil {
			t.Fatalf("installing %v: %v; apt-get update: %v", missing, err, uerr)
		}
		if _, err := run(t.Context(), env, args...); err != nil {
			t.Fatalf("installing %v: %v", missing, err)
		}
	}
}
