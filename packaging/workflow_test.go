package packaging

import (
	"io"
	"os"
	"regexp"
	"testing"

	"github.com/spamtagger/sysextd/internal/builder/buildcli"
)

// TestWorkflowUsesRealFlags checks that every `sysext-build VERB --flag`
// in the template workflow names a verb and flag that exist, so the file a
// template repository copies cannot drift from the command.
func TestWorkflowUsesRealFlags(t *testing.T) {
	data, err := os.ReadFile("github-workflow/sysext.yml")
	if err != nil {
		t.Fatal(err)
	}
	root := buildcli.NewRootCmd(io.Discard, io.Discard, os.Getenv)
	calls := regexp.MustCompile(`(?m)^\s*(?:run:\s*)?sysext-build (\w+)([^\n]*)`).FindAllStringSubmatch(string(data), -1)
	if len(calls) < 3 {
		t.Fatalf("found %d sysext-build calls, want check, build and publish", len(calls))
	}
	seen := map[string]bool{}
	for _, c := range calls {
		cmd, _, err := root.Find([]string{c[1]})
		if err != nil || cmd == root {
			t.Errorf("%q: no verb %s", c[0], c[1])
			continue
		}
		seen[c[1]] = true
		for _, f := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(c[2], -1) {
			if cmd.Flags().Lookup(f[1]) == nil {
				t.Errorf("%q: sysext-build %s has no --%s", c[0], c[1], f[1])
			}
		}
	}
	for _, v := range []string{"check", "build", "publish"} {
		if !seen[v] {
			t.Errorf("the workflow never runs sysext-build %s", v)
		}
	}
}
