package trust

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// need skips (loudly) when a tool is missing, except under CI, where the
// test fails: CI installs minisign and gnupg.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required under CI: %v", tool, err)
			}
			t.Skipf("SKIPPING: %s not installed: %v", tool, err)
		}
	}
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// releaseDir writes an image and a release.json, and SHA256SUMS with the
// real sha256sum.
func releaseDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, testAsset), []byte("image bytes"))
	writeFile(t, filepath.Join(dir, "release.json"), []byte(`{"version":"2026.11.25-0000"}`))
	sums := run(t, dir, "sha256sum", testAsset, "release.json")
	writeFile(t, filepath.Join(dir, SumsFile), []byte(sums))
	return dir
}

// The minisign tool's keys and signatures verify here, and ours verify with
// the minisign tool.
func TestMinisignInterop(t *testing.T) {
	need(t, "minisign", "sha256sum")
	keys := t.TempDir()
	pubFile, secFile := filepath.Join(keys, "real.pub"), filepath.Join(keys, "real.key")
	run(t, keys, "minisign", "-G", "-W", "-p", pubFile, "-s", secFile)
	pubText, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTestRoot(t)
	writeFile(t, tr.root.Path(rootfs.VendorKeysDir+"/real.pub"), pubText)
	tr.scope(rootfs.VendorKeysDir, "real", ext)
	kr := tr.keyring()
	// minisign prints its key id in the public key's comment.
	if m := regexp.MustCompile(`minisign public key ([0-9A-F]{16})`).FindSubmatch(pubText); m == nil || string(m[1]) != kr.Keys[0].ID {
		t.Errorf("key id %s, minisign says %q", kr.Keys[0].ID, pubText)
	}

	t.Run("minisign signs, trust verifies", func(t *testing.T) {
		dir := releaseDir(t)
		run(t, dir, "minisign", "-S", "-s", secFile, "-m", SumsFile, "-x", MinisignFile, "-t", "release 2026.11.25")
		v, err := Check(t.Context(), kr, required, ext, dirRelease(t, dir), testAsset, sha([]byte("image bytes")))
		if err != nil {
			t.Fatal(err)
		}
		if v.KeyName != "real" || !strings.Contains(v.Comment, "release 2026.11.25") {
			t.Errorf("verdict = %+v", v)
		}
		// and a tampered list is refused
		sums, _ := os.ReadFile(filepath.Join(dir, SumsFile))
		writeFile(t, filepath.Join(dir, SumsFile), bytes.Replace(sums, []byte("release.json"), []byte("release.jsoN"), 1))
		_, err = Check(t.Context(), kr, required, ext, dirRelease(t, dir), testAsset, sha([]byte("image bytes")))
		refused(t, err, "does not match SHA256SUMS")
	})

	t.Run("trust signs with minisign's secret key, minisign verifies", func(t *testing.T) {
		dir := releaseDir(t)
		s, err := LoadSigner(secFile, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := SignDir(dir, []Signer{s}); err != nil {
			t.Fatal(err)
		}
		run(t, dir, "minisign", "-V", "-H", "-p", pubFile, "-m", SumsFile, "-x", MinisignFile)
		run(t, dir, "sha256sum", "--strict", "-c", SumsFile)
	})

	t.Run("key made here, minisign verifies", func(t *testing.T) {
		pub, priv, err := minisign.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := pub.MarshalText()
		ours := filepath.Join(t.TempDir(), "ours.pub")
		writeFile(t, ours, text)
		dir := releaseDir(t)
		if _, _, err := SignDir(dir, []Signer{NewMinisignSigner(priv)}); err != nil {
			t.Fatal(err)
		}
		run(t, dir, "minisign", "-V", "-p", ours, "-m", SumsFile, "-x", MinisignFile)
		// the wrong key is refused by minisign too: the test can fail
		if err := exec.Command("minisign", "-V", "-p", pubFile, "-m", filepath.Join(dir, SumsFile), "-x", filepath.Join(dir, MinisignFile)).Run(); err == nil {
			t.Error("minisign accepted a signature by another key")
		}
	})
}

// gpg's keys and detached signatures (the systemd-sysupdate SHA256SUMS.gpg)
// verify here, and ours verify with gpgv.
func TestOpenPGPInterop(t *testing.T) {
	need(t, "gpg", "gpgv", "gpgconf", "sha256sum")
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	gpg := func(dir string, args ...string) string {
		t.Helper()
		return run(t, dir, "gpg", append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	}
	gpg(home, "--quick-gen-key", "Real Vendor <release@example.org>", "ed25519", "sign", "1d")
	fpr := regexp.MustCompile(`(?m)^fpr:+([0-9A-F]{40}):`).FindStringSubmatch(gpg(home, "--with-colons", "--list-keys"))
	if fpr == nil {
		t.Fatal("no fingerprint from gpg --list-keys")
	}
	tr := newTestRoot(t)
	writeFile(t, tr.root.Path(rootfs.VendorKeysDir+"/real.asc"), []byte(gpg(home, "--armor", "--export")))
	tr.scope(rootfs.VendorKeysDir, "real", ext)
	kr := tr.keyring()
	if kr.Keys[0].ID != fpr[1] || kr.Keys[0].Comment != "Real Vendor <release@example.org>" {
		t.Errorf("key = %+v, gpg says fingerprint %s", kr.Keys[0], fpr[1])
	}

	t.Run("gpg signs, trust verifies", func(t *testing.T) {
		for _, armor := range []bool{false, true} {
			dir := releaseDir(t)
			args := []string{"--detach-sign", "-o", OpenPGPFile}
			if armor {
				args = append([]string{"--armor"}, args...)
			}
			gpg(dir, append(args, SumsFile)...)
			v, err := Check(t.Context(), kr, required, ext, dirRelease(t, dir), testAsset, sha([]byte("image bytes")))
			if err != nil {
				t.Fatalf("armor %v: %v", armor, err)
			}
			if v.KeyID != fpr[1] || v.Method != MethodOpenPGP {
				t.Errorf("verdict = %+v", v)
			}
		}
	})

	t.Run("gpg's key expiry is honoured", func(t *testing.T) {
		dir := releaseDir(t)
		gpg(dir, "--detach-sign", "-o", OpenPGPFile, SumsFile)
		later := *kr
		later.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
		_, err := Check(t.Context(), &later, required, ext, dirRelease(t, dir), testAsset, sha([]byte("image bytes")))
		refused(t, err, "key real ("+fpr[1]+") expired on ")
	})

	t.Run("trust signs with gpg's secret key, gpgv verifies", func(t *testing.T) {
		keyDir := t.TempDir()
		sec := filepath.Join(keyDir, "sec.asc")
		writeFile(t, sec, []byte(gpg(home, "--armor", "--export-secret-keys")))
		writeFile(t, filepath.Join(keyDir, "pub.gpg"), []byte(gpg(home, "--export")))
		s, err := LoadSigner(sec, nil)
		if err != nil {
			t.Fatal(err)
		}
		dir := releaseDir(t)
		if _, _, err := SignDir(dir, []Signer{s}); err != nil {
			t.Fatal(err)
		}
		run(t, dir, "gpgv", "--keyring", filepath.Join(keyDir, "pub.gpg"), OpenPGPFile, SumsFile)
		// gpgv refuses a tampered list: the check above can fail
		writeFile(t, filepath.Join(dir, SumsFile), []byte("x"))
		if err := exec.Command("gpgv", "--keyring", filepath.Join(keyDir, "pub.gpg"), filepath.Join(dir, OpenPGPFile), filepath.Join(dir, SumsFile)).Run(); err == nil {
			t.Error("gpgv accepted a tampered SHA256SUMS")
		}
	})

	t.Run("key made here, gpgv verifies", func(t *testing.T) {
		e := newTestRoot(t).openpgpKey(rootfs.VendorKeysDir, "ours", false, nil)
		var pub bytes.Buffer
		if err := e.Serialize(&pub); err != nil {
			t.Fatal(err)
		}
		keyring := filepath.Join(t.TempDir(), "ours.gpg")
		writeFile(t, keyring, pub.Bytes())
		dir := releaseDir(t)
		if _, _, err := SignDir(dir, []Signer{NewOpenPGPSigner(e)}); err != nil {
			t.Fatal(err)
		}
		run(t, dir, "gpgv", "--keyring", keyring, OpenPGPFile, SumsFile)
	})
}
