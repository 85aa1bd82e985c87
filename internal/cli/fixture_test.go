package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/release"
)

// fixture is a throwaway root plus a GitHub stand-in, driven through the
// real command tree.
type fixture struct {
	t    *testing.T
	root rootfs.Root
	gh   *fakegithub.Server
}

func newFixture(t *testing.T, root rootfs.Root) *fixture {
	t.Helper()
	gh := fakegithub.New()
	t.Cleanup(gh.Close)
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("SYSEXT_GITHUB_API", "")
	return &fixture{t: t, root: root, gh: gh}
}

func (f *fixture) write(p, content string) {
	f.t.Helper()
	full := f.root.Path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// run runs sysextctl against the fixture's root and server.
func (f *fixture) run(args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{"--root", f.root.Dir(), "--github-api", f.gh.URL()}, args...)
	code = Run(context.Background(), all, &out, &errb)
	f.t.Logf("sysextctl %v -> %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

func (f *fixture) mustRun(args ...string) string {
	f.t.Helper()
	out, _, code := f.run(args...)
	if code != 0 {
		f.t.Fatalf("sysextctl %v: exit %d, want 0", args, code)
	}
	return out
}

func (f *fixture) publish(x release.Ext) string {
	f.t.Helper()
	return release.Publish(f.t, f.gh, x)
}

// list returns list --json by name.
func (f *fixture) list(args ...string) map[string]engine.Item {
	f.t.Helper()
	out, _, _ := f.run(append([]string{"list", "--json"}, args...)...)
	var items []engine.Item
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		f.t.Fatalf("list --json output is not JSON: %v\n%s", err, out)
	}
	m := map[string]engine.Item{}
	for _, it := range items {
		m[it.Name] = it
	}
	return m
}

func (f *fixture) exists(p string) bool {
	_, err := os.Stat(f.root.Path(p))
	return err == nil
}
