package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/release"
)

func writeConfig(t *testing.T, root rootfs.Root, content string) {
	t.Helper()
	p := root.Path(rootfs.DaemonConfig)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSources(t *testing.T) {
	root := rootfs.New(t.TempDir())
	if s, err := LoadSources(root); err != nil || len(s.Mirrors) != 0 {
		t.Fatalf("no file: %+v, %v", s, err)
	}
	writeConfig(t, root, "interval = \"1h\"\nmirrors = [\"file:///srv/m\", \"oci://r.example/ns\"]\nrequire_digest = true\ngithub_enterprise = [\"ghe.example.com\"]\n")
	s, err := LoadSources(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Mirrors) != 2 || !s.RequireDigest || s.GitHubEnterprise[0] != "ghe.example.com" {
		t.Errorf("sources = %+v", s)
	}
	writeConfig(t, root, "insecure = [\"registry.lan:5000\"]\n")
	if s, err := LoadSources(root); err != nil || len(s.Insecure) != 1 || s.Insecure[0] != "registry.lan:5000" {
		t.Errorf("insecure: %+v, %v", s, err)
	}
	for _, bad := range []string{"mirrors = [\"ftp://x/y\"]\n", "github_enterprise = [\"https://ghe/\"]\n", "mirrors = 3\n",
		"insecure = [\"registry.lan\"]\n", "insecure = [\"http://registry.lan:5000\"]\n"} {
		writeConfig(t, root, bad)
		if _, err := LoadSources(root); err == nil || !strings.Contains(err.Error(), rootfs.DaemonConfig) {
			t.Errorf("%q: error %v, want one naming %s", bad, err, rootfs.DaemonConfig)
		}
	}
}

// TestRouterWiresEnterprise: a manifest URL on a configured GHES host goes
// to that host's client (/api/v3/), github.com URLs to the other one.
func TestRouterWiresEnterprise(t *testing.T) {
	ghe := fakegithub.New()
	defer ghe.Close()
	x := release.Ext{Package: "hello", Version: "1.0-1"}
	release.Publish(t, ghe, x)
	root := rootfs.New(t.TempDir())
	cfg := Config{Root: root, GitHubAPI: "http://127.0.0.1:1/",
		Sources:       Sources{GitHubEnterprise: []string{"ghe.example.com"}},
		EnterpriseAPI: map[string]string{"ghe.example.com": ghe.URL()}}
	r, err := newRouter(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := source.Target{Codename: "trixie", Arch: release.HostArch()}
	res := r.LatestAll(t.Context(), []source.Request{{Name: "hello", URL: "https://ghe.example.com/SpamTagger/sysext-hello"}}, target)["hello"]
	if res.Err != nil || res.Release.Version != "1.0-1" {
		t.Fatalf("GHES lookup: %+v", res)
	}
	for _, q := range ghe.Requests() {
		if strings.HasPrefix(q.Path, "/repos/") {
			t.Errorf("GHES request %s outside /api/v3/", q.Path)
		}
	}
	res = r.LatestAll(t.Context(), []source.Request{{Name: "hello", URL: "https://github.com/SpamTagger/sysext-hello"}}, target)["hello"]
	if res.Err == nil || !source.IsNetwork(res.Err) {
		t.Errorf("github.com lookup went elsewhere: %+v", res)
	}
}
