package buildcli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/testutil/distribution"
)

// TestPublishToRegistry: publish --to oci:// pushes the artifact and tags
// sysextctl mirror makes, to a docker-registry that needs a login, the
// login coming from a file oras login wrote (as a CI user has it), and
// sysextd's OCI source offers what was pushed.
func TestPublishToRegistry(t *testing.T) {
	out, meta := builtRelease(t)
	reg := distribution.Start(t, true)
	authFile := filepath.Join(t.TempDir(), "auth.json")
	reg.AuthJSON(t, authFile)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("REGISTRY_AUTH_FILE", authFile)
	to := "oci://" + reg.Host + "/fleet"
	stdout, stderr, code := run(t, "publish", "--dir", out, "--to", to, meta)
	if code != 0 {
		t.Fatalf("publish --to %s: exit %d\n%s%s", to, code, stdout, stderr)
	}
	if !strings.Contains(stdout, "as 2026.11.01-0900_trixie_amd64") {
		t.Errorf("stdout %q does not name the tag pushed", stdout)
	}
	logins, _, err := source.LoadRegistryLogins([]source.LoginFile{{Path: authFile}})
	if err != nil {
		t.Fatal(err)
	}
	o := source.NewOCI(source.HTTPOptions{}, source.OCIConfig{Logins: logins}, "")
	trixie := source.Target{Codename: "trixie", Arch: "amd64"}
	for _, u := range []string{to, to + "/sysext-hello:trixie_amd64", to + "/sysext-hello:2026.11.01-0900_trixie_amd64"} {
		r := o.LatestAll(t.Context(), []source.Request{{Name: "hello", URL: u}}, trixie)["hello"]
		if r.Err != nil {
			t.Fatalf("%s: %v", u, r.Err)
		}
		if r.Release.Tag != "2026.11.01-0900" || r.Release.Assets["SHA256SUMS"].Name == "" || r.Release.Assets["release.json"].Name == "" {
			t.Errorf("%s: release %+v, want tag 2026.11.01-0900 with SHA256SUMS and release.json", u, r.Release)
		}
	}

	// Without a login: refused, naming the registry and where logins are read.
	t.Setenv("REGISTRY_AUTH_FILE", "")
	_, stderr, code = run(t, "publish", "--dir", out, "--to", to, meta)
	if code == 0 || !strings.Contains(stderr, "registry "+reg.Host+" refused access") || !strings.Contains(stderr, "/etc/sysextd/auth.json") {
		t.Errorf("publish without a login: exit %d, %s", code, stderr)
	}
}

func TestDefaultCache(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		env     map[string]string
		euid    int
		want    string
		wantErr bool
	}{
		{map[string]string{"HOME": "/home/ci"}, 0, DefaultCacheDir, false},
		{map[string]string{"HOME": "/home/ci"}, 1000, "/home/ci/.cache/sysext-build", false},
		{map[string]string{"HOME": "/home/ci", "XDG_CACHE_HOME": "/var/tmp/xdg"}, 1000, "/var/tmp/xdg/sysext-build", false},
		{map[string]string{"HOME": "/home/ci", "XDG_CACHE_HOME": "relative"}, 1000, "/home/ci/.cache/sysext-build", false},
		{map[string]string{}, 1000, "", true},
	}
	for _, tt := range tests {
		got, err := defaultCache(env(tt.env), tt.euid)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("defaultCache(%v, euid %d) = %q, %v; want %q", tt.env, tt.euid, got, err, tt.want)
		}
	}
}
