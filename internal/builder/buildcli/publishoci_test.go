package buildcli

import (
	"encoding/json"
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

// TestPhaseAndWithdrawRegistry: phase and withdraw --to oci:// rewrite
// release.json, SHA256SUMS and its signature in every artifact of the
// release (a new manifest under each tag, the moving tag following),
// signed again; sysextd's OCI source then offers release files that
// verify, and the artifact's annotations say the same.
func TestPhaseAndWithdrawRegistry(t *testing.T) {
	pub, keyFile, out, meta := signedBuild(t)
	reg := distribution.Start(t, false)
	t.Setenv("HOME", t.TempDir())
	ns := "oci://" + reg.Host + "/fleet"
	if _, stderr, code := run(t, "publish", "--dir", out, "--to", ns, "--phased", "5", "--sign-key", keyFile, meta); code != 0 {
		t.Fatalf("publish --phased 5: exit %d: %s", code, stderr)
	}
	repo := ns + "/sysext-hello"
	o := source.NewOCI(source.HTTPOptions{}, source.OCIConfig{}, "")
	trixie := source.Target{Codename: "trixie", Arch: "amd64"}
	offered := func(wantPhase any, wantWithdrawn bool, annPhase, annWithdrawn string) {
		t.Helper()
		for _, u := range []string{repo, repo + ":trixie_amd64"} {
			r := o.LatestAll(t.Context(), []source.Request{{Name: "hello", URL: u}}, trixie)["hello"]
			if r.Err != nil {
				t.Fatalf("%s: %v", u, r.Err)
			}
			files := map[string][]byte{}
			for _, n := range []string{"release.json", "SHA256SUMS", "SHA256SUMS.minisig"} {
				b, err := o.Fetch(t.Context(), r.Release.Assets[n])
				if err != nil {
					t.Fatalf("%s: %s: %v", u, n, err)
				}
				files[n] = b
			}
			checkRollout(t, files, &pub, wantPhase, wantWithdrawn)
		}
		rel, err := o.OpenRelease(t.Context(), repo, phaseTag)
		if err != nil {
			t.Fatal(err)
		}
		if tags := rel.Tags(); len(tags) != 1 || tags[0] != phaseTag+"_trixie_amd64" {
			t.Errorf("artifacts %v", tags)
		}
		// As a person sees it, with oras.
		var man struct {
			Annotations map[string]string `json:"annotations"`
		}
		body := reg.Oras(t, t.TempDir(), "manifest", "fetch", reg.Host+"/fleet/sysext-hello:"+phaseTag+"_trixie_amd64")
		if err := json.Unmarshal([]byte(body), &man); err != nil {
			t.Fatalf("oras manifest fetch: %v\n%s", err, body)
		}
		ann := man.Annotations
		if ann[source.OCIPhasedAnnotation] != annPhase || ann[source.OCIWithdrawnAnnotation] != annWithdrawn {
			t.Errorf("annotations %v, want phased %q withdrawn %q", ann, annPhase, annWithdrawn)
		}
	}
	offered(5.0, false, "5", "")

	if _, stderr, code := run(t, "phase", phaseTag, "25", "--to", repo, "--sign-key", keyFile); code != 0 {
		t.Fatalf("phase 25: exit %d: %s", code, stderr)
	}
	offered(25.0, false, "25", "")
	if _, stderr, code := run(t, "phase", phaseTag, "10", "--to", repo, "--sign-key", keyFile); code != ExitUsage || !strings.Contains(stderr, "only rises") {
		t.Errorf("phase down: exit %d, %s", code, stderr)
	}
	if _, stderr, code := run(t, "withdraw", phaseTag, "--to", repo); code != ExitUsage || !strings.Contains(stderr, "--sign-key") {
		t.Errorf("withdraw without the key: exit %d, %s", code, stderr)
	}
	offered(25.0, false, "25", "")
	if _, stderr, code := run(t, "withdraw", phaseTag, "--to", repo, "--sign-key", keyFile); code != 0 {
		t.Fatalf("withdraw: exit %d: %s", code, stderr)
	}
	offered(25.0, true, "25", "true")
	if _, stderr, code := run(t, "withdraw", "no-such-tag", "--to", repo, "--sign-key", keyFile); code == 0 || !strings.Contains(stderr, "no artifact of release no-such-tag") {
		t.Errorf("withdraw of an unknown tag: exit %d, %s", code, stderr)
	}
}
