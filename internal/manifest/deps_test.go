package manifest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoNetworkDependency keeps manifest checking free of any client: it
// reads source URLs through internal/sourceref, never internal/source.
func TestNoNetworkDependency(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("SKIP: no go tool on PATH to list dependencies")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "net/http" || strings.HasSuffix(p, "/internal/source") {
			t.Errorf("internal/manifest depends on %s; parse URLs with internal/sourceref", p)
		}
	}
}
