package buildcli

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

const phaseTag = "2026.11.01-0900"

// checkRollout verifies what sysextd will verify: SHA256SUMS vouches for
// release.json, the signature (when pub is set) covers SHA256SUMS, and
// release.json carries the fields.
func checkRollout(t *testing.T, files map[string][]byte, pub *minisign.PublicKey, wantPhase any, wantWithdrawn bool) {
	t.Helper()
	h := sha256.Sum256(files["release.json"])
	if !strings.Contains(string(files["SHA256SUMS"]), hex.EncodeToString(h[:])+"  release.json\n") {
		t.Errorf("SHA256SUMS does not vouch for the new release.json:\n%s", files["SHA256SUMS"])
	}
	if pub != nil && !minisign.Verify(*pub, files["SHA256SUMS"], files["SHA256SUMS.minisig"]) {
		t.Error("SHA256SUMS.minisig does not verify the rewritten SHA256SUMS")
	}
	var rj map[string]any
	if err := json.Unmarshal(files["release.json"], &rj); err != nil {
		t.Fatal(err)
	}
	if got := rj["phased_percentage"]; got != wantPhase {
		t.Errorf("phased_percentage = %v, want %v", got, wantPhase)
	}
	if got, _ := rj["withdrawn"].(bool); got != wantWithdrawn {
		t.Errorf("withdrawn = %v, want %v", got, wantWithdrawn)
	}
	if rj["version"] != phaseTag || rj["package_versions"] == nil {
		t.Errorf("the other fields were not kept: %s", files["release.json"])
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// signedBuild builds the test release tagged phaseTag into out, signed
// with a new minisign key kept in keyFile.
func signedBuild(t *testing.T) (pub minisign.PublicKey, keyFile, out, meta string) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := priv.MarshalText()
	keyFile = filepath.Join(t.TempDir(), "release.key")
	os.WriteFile(keyFile, text, 0o600)
	_, meta, archiveArgs := builtReleaseWithArgs(t)
	out = filepath.Join(t.TempDir(), "signed")
	args := append([]string{"build"}, archiveArgs...)
	if _, stderr, code := run(t, append(args, "--out", out, "--tag", phaseTag, "--sign-key", keyFile, meta)...); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	return pub, keyFile, out, meta
}

func TestPhaseAndWithdrawStaticSigned(t *testing.T) {
	pub, keyFile, out, meta := signedBuild(t)
	to := filepath.Join(t.TempDir(), "mirror")
	rel := filepath.Join(to, phaseTag)

	// A signed release cannot be phased without the key: the old
	// signature would no longer match.
	if _, stderr, code := run(t, "publish", "--dir", out, "--to", to, "--phased", "5", meta); code != ExitUsage || !strings.Contains(stderr, "--sign-key") {
		t.Fatalf("publish --phased without the key: exit %d, %s", code, stderr)
	}
	if _, stderr, code := run(t, "publish", "--dir", out, "--to", to, "--phased", "5", "--sign-key", keyFile, meta); code != 0 {
		t.Fatalf("publish --phased 5: exit %d: %s", code, stderr)
	}
	checkRollout(t, readDir(t, rel), &pub, 5.0, false)

	if _, stderr, code := run(t, "phase", phaseTag, "25", "--to", to, "--sign-key", keyFile); code != 0 {
		t.Fatalf("phase 25: exit %d: %s", code, stderr)
	}
	checkRollout(t, readDir(t, rel), &pub, 25.0, false)
	latest, _ := os.ReadFile(filepath.Join(to, "latest.json"))
	if !strings.Contains(string(latest), `"phased_percentage": 25`) {
		t.Errorf("latest.json was not updated with its release: %s", latest)
	}

	before := readDir(t, rel)
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"phase", phaseTag, "10", "--to", to, "--sign-key", keyFile}, "only rises"},
		{[]string{"phase", phaseTag, "101", "--to", to, "--sign-key", keyFile}, "0 to 100"},
		{[]string{"withdraw", phaseTag, "--to", to}, "--sign-key"},
	} {
		if _, stderr, code := run(t, bad.args...); code != ExitUsage || !strings.Contains(stderr, bad.want) {
			t.Errorf("%v: exit %d, %s; want %d and %q", bad.args, code, stderr, ExitUsage, bad.want)
		}
		if after := readDir(t, rel); !mapsEqual(before, after) {
			t.Errorf("%v changed the release", bad.args)
		}
	}

	if _, stderr, code := run(t, "withdraw", phaseTag, "--to", to, "--sign-key", keyFile); code != 0 {
		t.Fatalf("withdraw: exit %d: %s", code, stderr)
	}
	checkRollout(t, readDir(t, rel), &pub, 25.0, true)
	if _, stderr, code := run(t, "phase", phaseTag, "100", "--to", to, "--sign-key", keyFile); code != ExitUsage || !strings.Contains(stderr, "withdrawn") {
		t.Errorf("phase after withdraw: exit %d, %s", code, stderr)
	}
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
}

// TestPhaseAndWithdrawGitHub: on GitHub an asset is replaced by a delete
// and an upload, release.json first, SHA256SUMS after it.
func TestPhaseAndWithdrawGitHub(t *testing.T) {
	out, meta := builtRelease(t)
	gh := fakegithub.NewPublishing()
	t.Cleanup(gh.Close)
	t.Setenv("GITHUB_TOKEN", "ghp_test")
	if _, stderr, code := run(t, "publish", "--dir", out, "--github-api", gh.URL(), "--phased", "5", meta); code != 0 {
		t.Fatalf("publish --phased 5: exit %d: %s", code, stderr)
	}
	assets, _, _ := gh.ReleaseAssets("SpamTagger", "sysext-hello", phaseTag)
	checkRollout(t, assets, nil, 5.0, false)

	mark := len(gh.Events())
	if _, stderr, code := run(t, "phase", phaseTag, "25", "--github-api", gh.URL(), meta); code != 0 {
		t.Fatalf("phase 25: exit %d: %s", code, stderr)
	}
	want := []string{"delete-asset " + phaseTag + " release.json", "upload " + phaseTag + " release.json",
		"delete-asset " + phaseTag + " SHA256SUMS", "upload " + phaseTag + " SHA256SUMS"}
	if got := gh.Events()[mark:]; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	assets, _, _ = gh.ReleaseAssets("SpamTagger", "sysext-hello", phaseTag)
	checkRollout(t, assets, nil, 25.0, false)
	var names []string
	for n := range assets {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, wantAssets) {
		t.Errorf("assets after phase = %v, want %v", names, wantAssets)
	}

	if _, stderr, code := run(t, "withdraw", phaseTag, "--github-api", gh.URL(), meta); code != 0 {
		t.Fatalf("withdraw: exit %d: %s", code, stderr)
	}
	assets, _, _ = gh.ReleaseAssets("SpamTagger", "sysext-hello", phaseTag)
	checkRollout(t, assets, nil, 25.0, true)

	if _, stderr, code := run(t, "withdraw", "no-such-tag", "--github-api", gh.URL(), meta); code == 0 || !strings.Contains(stderr, "no-such-tag") {
		t.Errorf("withdraw of a missing tag: exit %d, %s", code, stderr)
	}
}

func TestResum(t *testing.T) {
	sums := []byte(strings.Repeat("a", 64) + "  img.squashfs\n" + strings.Repeat("b", 64) + "  release.json\n")
	got, err := resum(sums, "release.json", []byte("{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("{}\n"))
	if want := strings.Repeat("a", 64) + "  img.squashfs\n" + hex.EncodeToString(h[:]) + "  release.json\n"; string(got) != want {
		t.Errorf("resum = %q, want %q", got, want)
	}
	if _, err := resum([]byte(strings.Repeat("a", 64)+"  img.squashfs\n"), "release.json", nil); err == nil || !strings.Contains(err.Error(), "does not list release.json") {
		t.Errorf("release.json not listed: %v", err)
	}
	if _, err := resum([]byte("garbage\n"), "release.json", nil); err == nil || !strings.Contains(err.Error(), "SHA256SUMS:1") {
		t.Errorf("garbage: %v", err)
	}
}
