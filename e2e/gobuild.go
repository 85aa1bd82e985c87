//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// GoBuild builds the main package at pkg (an import path or a path relative
// to the module root, e.g. "./cmd/sysextctl") as a static binary and returns
// its host path, ready for Container.CopyIn. CGO is off so that the binary
// does not depend on the host's glibc.
func GoBuild(t testing.TB, pkg string) string {
	t.Helper()
	gomod := strings.TrimSpace(mustRun(t, t.Context(), "go", "env", "GOMOD"))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("building %s: not inside a Go module", pkg)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	env := append(os.Environ(), "CGO_ENABLED=0")
	if _, err := runIn(t, filepath.Dir(gomod), env, "go", "build", "-trimpath", "-o", out, pkg); err != nil {
		t.Fatalf("building %s: %v", pkg, err)
	}
	return out
}
