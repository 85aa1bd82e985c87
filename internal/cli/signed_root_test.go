package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
	"github.com/spamtagger/sysextd/internal/trust"
)

// signedExt is hello with SHA256SUMS and a minisign signature by priv
// among its release assets.
func signedExt(t *testing.T, priv minisign.PrivateKey, version string) release.Ext {
	t.Helper()
	x := release.Ext{Package: "hello", Version: version, Spec: sqfs.Spec{Files: map[string]string{"usr/share/sysextd-test/" + version: version}}}
	fields := x.Fields()
	x.ImagePath = sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: x.Image, Release: fields, Files: x.Spec.Files})
	data, err := os.ReadFile(x.ImagePath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	asset := x.Image + "_" + x.Codename + "_" + fields["ARCH"] + ".squashfs"
	sums := trust.FormatSums(map[string]string{asset: hex.EncodeToString(sum[:])})
	sig, err := trust.NewMinisignSigner(priv).Sign(sums)
	if err != nil {
		t.Fatal(err)
	}
	x.Extra = map[string][]byte{trust.SumsFile: sums, trust.MinisignFile: sig}
	return x
}

// TestSignedReleaseFromEverySource: once the vendor ships a key, a vendor
// entry needs a signed release. An unsigned one is refused naming the key;
// a signed one installs from GitHub, from a file:// mirror and from an OCI
// registry (both filled by sysextctl mirror, GitHub then down), and list
// says who signed it.
func TestSignedReleaseFromEverySource(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest)
		pub, priv, err := minisign.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := pub.MarshalText()
		f.write(rootfs.VendorKeysDir+"/spamtagger.pub", string(text))
		f.write(rootfs.VendorKeysDir+"/spamtagger.extensions", "*\n")

		f.publish(release.Ext{Package: "hello", Version: "0.9-1"})
		_, stderr, code := f.run("install", "hello")
		if code == 0 || !strings.Contains(stderr, "spamtagger") {
			t.Fatalf("unsigned release: exit %d, stderr %q; want a refusal naming the vendor key", code, stderr)
		}
		if f.exists("/var/lib/extensions/sysext-hello.raw") {
			t.Fatal("the unsigned image was placed")
		}

		f.publish(signedExt(t, priv, "1.0-1"))
		f.mustRun("install", "hello")
		if it := f.list("--offline")["hello"]; !strings.HasPrefix(it.SignedBy, "spamtagger (") {
			t.Fatalf("installed from GitHub: signed_by %q", it.SignedBy)
		}

		mirror := t.TempDir()
		reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(reg.Close)
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		oci := "oci://" + strings.TrimPrefix(reg.URL, "http://") + "/spamtagger"
		f.mustRun("mirror", "--to", "file://"+mirror)
		f.mustRun("mirror", "--to", oci)
		f.gh.Close()
		for _, src := range []string{"file://" + mirror, oci} {
			f.mustRun("remove", "hello")
			f.write(rootfs.DaemonConfig, "mirrors = [\""+src+"\"]\n")
			f.mustRun("install", "hello")
			it := f.list("--offline")["hello"]
			if !strings.HasPrefix(it.SignedBy, "spamtagger (") || !f.exists("/usr/share/sysextd-test/1.0-1") {
				t.Errorf("installed from %s: %+v", src, it)
			}
		}
		if _, err := os.Stat(filepath.Join(mirror, "sysext-hello")); err != nil {
			t.Error(err)
		}
	})
}
