package trust_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"aead.dev/minisign"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/trust"
)

// release is any source's release: GitHub, a mirror, a registry, a directory.
type release map[string][]byte

func (r release) HasAsset(name string) bool { _, ok := r[name]; return ok }
func (r release) FetchAsset(_ context.Context, name string) ([]byte, error) {
	return r[name], nil
}

// The verify phase of an install, between the digest check and the image
// inspection.
func Example() {
	dir, _ := os.MkdirTemp("", "trust-example")
	defer os.RemoveAll(dir)
	root := rootfs.New(dir)

	// The vendor ships a key that may sign every extension.
	pub, priv, _ := minisign.GenerateKey(nil)
	text, _ := pub.MarshalText()
	keys := root.Path(rootfs.VendorKeysDir)
	os.MkdirAll(keys, 0o755)
	os.WriteFile(filepath.Join(keys, "spamtagger.pub"), text, 0o644)
	os.WriteFile(filepath.Join(keys, "spamtagger.extensions"), []byte("*\n"), 0o644)

	// The publisher's release, signed.
	image := []byte("squashfs bytes")
	sum := sha256.Sum256(image)
	digest := hex.EncodeToString(sum[:])
	sums := trust.FormatSums(map[string]string{"sysext-hello_trixie_amd64.squashfs": digest})
	sig, _ := trust.NewMinisignSigner(priv).Sign(sums)
	rel := release{"sysext-hello_trixie_amd64.squashfs": image, trust.SumsFile: sums, trust.MinisignFile: sig}

	// Once per run.
	kr, errs := trust.LoadKeyring(root)
	for _, err := range errs {
		fmt.Println("warning:", err) // a bad key file; the others still load
	}
	// Per extension: entry.Signature, entry.Keys, entry.Source == rootfs.VendorManifest, sysextd.toml's signature.
	pol := trust.PolicyFor(kr, "", nil, true, "", "hello")
	// Per image, after the download matched its digest.
	v, err := trust.Check(context.Background(), kr, pol, "hello", rel, "sysext-hello_trixie_amd64.squashfs", digest)
	if err != nil {
		fmt.Println("refused:", err) // leave the store untouched
		return
	}
	fmt.Println(pol.Mode, "("+pol.Reason+"):", v.Method, v.KeyName, v.Signed)
	// Output: required (vendor entry and the vendor ships a key): minisign spamtagger true
}
