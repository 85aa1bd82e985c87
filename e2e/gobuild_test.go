//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestGoBuildRunsInside checks the path every scenario takes: a binary of
// this repository built on the host runs inside the trixie container.
func TestGoBuildRunsInside(t *testing.T) {
	requireRoot(t)
	bin := GoBuild(t, "./cmd/sysextctl")
	c := Boot(t, BootOptions{})
	c.CopyIn(t, bin, "/usr/local/bin/sysextctl", 0o755)
	stdout, stderr, code := c.Exec(t, "sysextctl", "--version")
	if code != 0 || strings.TrimSpace(stdout+stderr) == "" {
		t.Errorf("sysextctl --version inside: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	t.Logf("sysextctl --version inside: %s", strings.TrimSpace(stdout+stderr))
}
