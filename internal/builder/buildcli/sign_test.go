package buildcli

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"aead.dev/minisign"
)

// TestBuildSignsAndPublishCarriesSignature: --sign-key writes
// SHA256SUMS.minisig over the SHA256SUMS just written, and publish ships it.
func TestBuildSignsAndPublishCarriesSignature(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, err := priv.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "release.key")
	if err := os.WriteFile(keyFile, text, 0o600); err != nil {
		t.Fatal(err)
	}
	_, meta, archiveArgs := builtReleaseWithArgs(t)
	out := filepath.Join(t.TempDir(), "signed")
	args := append([]string{"build"}, archiveArgs...)
	if stdout, stderr, code := run(t, append(args, "--out", out, "--tag", "t1", "--sign-key", keyFile, meta)...); code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	sums, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	sig, err := os.ReadFile(filepath.Join(out, "SHA256SUMS.minisig"))
	if err != nil {
		t.Fatal(err)
	}
	if !minisign.Verify(pub, sums, sig) {
		t.Fatal("SHA256SUMS.minisig does not verify SHA256SUMS with the public key")
	}

	to := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := run(t, "publish", "--dir", out, "--to", to, meta); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(to, "t1", "SHA256SUMS.minisig")); err != nil {
		t.Errorf("the signature was not published: %v", err)
	}

	// A later unsigned build into the same directory leaves no stale signature.
	args = append([]string{"build"}, archiveArgs...)
	if _, stderr, code := run(t, append(args, "--out", out, "--tag", "t2", meta)...); code != 0 {
		t.Fatalf("unsigned rebuild: exit %d: %s", code, stderr)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if slices.Contains(names, "SHA256SUMS.minisig") {
		t.Errorf("stale signature left: %v", names)
	}
}
