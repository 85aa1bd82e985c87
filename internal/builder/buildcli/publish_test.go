package buildcli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

// builtRelease runs `sysext-build build` against the check fixture
// archive and returns the output directory and metadata.json.
func builtRelease(t *testing.T) (out, meta string) {
	out, meta, _ = builtReleaseWithArgs(t)
	return out, meta
}

// builtReleaseWithArgs is builtRelease that also returns the flags that
// reach the same fixture archive and base.
func builtReleaseWithArgs(t *testing.T) (out, meta string, archiveArgs []string) {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("SKIP: mksquashfs (squashfs-tools) not installed")
	}
	fa := checkArchive(t)
	in := writeFiles(t, map[string]string{"metadata.json": metadata, "status": status})
	out = filepath.Join(t.TempDir(), "output")
	archiveArgs = []string{"--base", filepath.Join(in, "status"), "--mirror", fa.URL, "--security-mirror", fa.URL,
		"--keyring", fa.KeyringFile(t), "--cache", t.TempDir()}
	args := append([]string{"build"}, archiveArgs...)
	stdout, stderr, code := run(t, append(args, "--out", out, "--tag", "2026.11.01-0900", filepath.Join(in, "metadata.json"))...)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	return out, filepath.Join(in, "metadata.json"), archiveArgs
}

var wantAssets = []string{"SHA256SUMS", "release.json", "sysext-hello_trixie_amd64.manifest", "sysext-hello_trixie_amd64.squashfs"}

func TestPublishGitHub(t *testing.T) {
	out, meta, archiveArgs := builtReleaseWithArgs(t)
	gh := fakegithub.NewPublishing()
	t.Cleanup(gh.Close)
	check := func(t *testing.T) (string, int) {
		args := append([]string{"check", "--github-api", gh.URL()}, archiveArgs...)
		stdout, stderr, code := run(t, append(args, meta)...)
		t.Logf("check: exit %d\n%s%s", code, stdout, stderr)
		return stdout, code
	}

	t.Run("check before any release", func(t *testing.T) {
		if out, code := check(t); code != ExitRebuild || !strings.Contains(out, "no release yet") {
			t.Errorf("exit %d, %q", code, out)
		}
	})

	t.Run("no token", func(t *testing.T) {
		t.Setenv("GITHUB_TOKEN", "")
		_, stderr, code := run(t, "publish", "--dir", out, "--github-api", gh.URL(), meta)
		if code != ExitUsage || !strings.Contains(stderr, "GITHUB_TOKEN") || len(gh.Events()) != 0 {
			t.Errorf("exit %d, stderr %q, events %v", code, stderr, gh.Events())
		}
	})

	t.Run("draft, assets, publish", func(t *testing.T) {
		t.Setenv("GITHUB_TOKEN", "ghp_test")
		stdout, stderr, code := run(t, "publish", "--dir", out, "--github-api", gh.URL(), meta)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
		}
		ev := gh.Events()
		if len(ev) != 6 || ev[0] != "create 2026.11.01-0900 draft=true" || ev[5] != "edit 2026.11.01-0900 draft=false" {
			t.Errorf("events = %v, want create draft, 4 uploads, publish", ev)
		}
		assets, draft, ok := gh.ReleaseAssets("SpamTagger", "sysext-hello", "2026.11.01-0900")
		if !ok || draft {
			t.Fatalf("release: ok %v draft %v", ok, draft)
		}
		var names []string
		for name, data := range assets {
			names = append(names, name)
			want, _ := os.ReadFile(filepath.Join(out, name))
			if string(data) != string(want) {
				t.Errorf("asset %s differs from the file", name)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, wantAssets) {
			t.Errorf("assets = %v, want %v", names, wantAssets)
		}
		// What sysextd reads: the latest release's release.json.
		resp, err := http.Get(gh.URL() + "repos/SpamTagger/sysext-hello/releases/latest")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var latest struct {
			TagName string `json:"tag_name"`
		}
		json.NewDecoder(resp.Body).Decode(&latest)
		if latest.TagName != "2026.11.01-0900" {
			t.Errorf("latest = %q", latest.TagName)
		}
	})

	t.Run("check after the release: up to date", func(t *testing.T) {
		if out, code := check(t); code != 0 || !strings.Contains(out, "up to date (release 2026.11.01-0900)") {
			t.Errorf("exit %d, %q", code, out)
		}
	})
}

func TestPublishFailedUploadDeletesDraft(t *testing.T) {
	out, meta := builtRelease(t)
	gh := fakegithub.NewUnstarted()
	h := gh.PublishingHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Query().Get("name") == "release.json" {
			http.Error(w, `{"message": "boom"}`, http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("GITHUB_TOKEN", "ghp_test")
	_, stderr, code := run(t, "publish", "--dir", out, "--github-api", srv.URL+"/", meta)
	if code != ExitFailure || !strings.Contains(stderr, "uploading release.json") || !strings.Contains(stderr, "draft release was deleted") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, _, ok := gh.ReleaseAssets("SpamTagger", "sysext-hello", "2026.11.01-0900"); ok {
		t.Errorf("the draft is still there; events %v", gh.Events())
	}
}

func TestPublishChecksSums(t *testing.T) {
	out, meta := builtRelease(t)
	if err := os.WriteFile(filepath.Join(out, "sysext-hello_trixie_amd64.manifest"), []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, "publish", "--dir", out, "--to", t.TempDir(), meta)
	if code == 0 || !strings.Contains(stderr, "sysext-hello_trixie_amd64.manifest: sha256") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestPublishToDir(t *testing.T) {
	out, meta := builtRelease(t)
	to := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := run(t, "publish", "--dir", out, "--to", to, meta); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(to, "2026.11.01-0900"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, wantAssets) {
		t.Errorf("published %v, want %v", names, wantAssets)
	}
	latest, _ := os.ReadFile(filepath.Join(to, "latest.json"))
	if !strings.Contains(string(latest), `"version": "2026.11.01-0900"`) {
		t.Errorf("latest.json = %s", latest)
	}
	if _, stderr, code := run(t, "publish", "--dir", out, "--to", to, meta); code == 0 || !strings.Contains(stderr, "exists already") {
		t.Errorf("second publish of the same tag: exit %d, %s", code, stderr)
	}
}
