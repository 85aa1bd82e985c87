package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/trust"
)

// vendorKey installs a minisign key as the vendor's, allowed to sign every
// extension, and returns its private half.
func vendorKey(t *testing.T, b *bench, name string) minisign.PrivateKey {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	dir := b.e.Root.Path(rootfs.VendorKeysDir)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, name+".pub"), text, 0o644)
	os.WriteFile(filepath.Join(dir, name+".extensions"), []byte("*\n"), 0o644)
	b.e.Keyring = nil // reload
	return priv
}

// sign adds SHA256SUMS and its minisign signature (by priv) to the
// release of name published last; tamper changes the listed sum.
func (b *bench) sign(name string, priv minisign.PrivateKey, tamper bool) {
	b.t.Helper()
	b.signAll(name, priv, tamper, nil)
}

// signWith is sign listing extra assets (name -> file) in SHA256SUMS too.
func (b *bench) signWith(name string, priv minisign.PrivateKey, extra map[string]string) {
	b.t.Helper()
	b.signAll(name, priv, false, extra)
}

func (b *bench) signAll(name string, priv minisign.PrivateKey, tamper bool, extra map[string]string) {
	b.t.Helper()
	rel := b.src.releases[name]
	data, err := os.ReadFile(b.src.files[rel.Image.Name])
	if err != nil {
		b.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	if tamper {
		hexSum = strings.Repeat("0", 64)
	}
	list := map[string]string{rel.Image.Name: hexSum}
	for n, p := range extra {
		d, err := os.ReadFile(p)
		if err != nil {
			b.t.Fatal(err)
		}
		s := sha256.Sum256(d)
		list[n] = hex.EncodeToString(s[:])
	}
	sums := trust.FormatSums(list)
	sig, err := trust.NewMinisignSigner(priv).Sign(sums)
	if err != nil {
		b.t.Fatal(err)
	}
	dir := b.t.TempDir()
	rel.Assets = map[string]source.Asset{rel.Image.Name: rel.Image}
	for n := range extra {
		rel.Assets[n] = source.Asset{Name: n}
	}
	for file, content := range map[string][]byte{trust.SumsFile: sums, trust.MinisignFile: sig} {
		key := name + "-" + rel.Version + "-" + file
		p := filepath.Join(dir, file)
		os.WriteFile(p, content, 0o644)
		b.src.files[key] = p
		rel.Assets[file] = source.Asset{Name: key}
	}
}

// TestSignaturePolicyInTheTransaction: once the vendor ships a key, vendor
// entries need a valid signature; unsigned or badly signed releases are
// refused before the store changes, and an update that fails its
// signature leaves the previous version merged.
func TestSignaturePolicyInTheTransaction(t *testing.T) {
	b := newBench(t)
	for _, en := range b.e.Manifests.Entries {
		en.Source = rootfs.VendorManifest
	}
	priv := vendorKey(t, b, "spamtagger")
	b.publish("alpha", "1")
	r := b.apply(VerbInstall, "alpha")
	if r.OK || !strings.Contains(r.Error, "spamtagger") || r.RolledBack {
		t.Fatalf("unsigned release under a vendor key = %+v, want refused naming the expected key", r)
	}
	if got := b.installed(); len(got) != 0 {
		t.Fatalf("installed %v after a refused signature", got)
	}
	b.sign("alpha", priv, false)
	if r := b.apply(VerbInstall, "alpha"); !r.OK {
		t.Fatalf("signed install: %s", r.Error)
	}
	st, _ := store.Store{Root: b.e.Root}.LoadState()
	if got := st.Extensions["alpha"].SignedBy; !strings.HasPrefix(got, "spamtagger (") {
		t.Errorf("state signed_by = %q", got)
	}

	// An update signed by a key nobody allowed, then a tampered one.
	b.publish("alpha", "2")
	_, stranger, _ := minisign.GenerateKey(nil)
	b.sign("alpha", stranger, false)
	if r := b.apply(VerbUpdate, "alpha"); r.OK || !strings.Contains(r.Error, "spamtagger") {
		t.Fatalf("update signed by a stranger = %+v", r)
	}
	b.sign("alpha", priv, true)
	if r := b.apply(VerbUpdate, "alpha"); r.OK {
		t.Fatalf("update with a tampered SHA256SUMS = %+v", r)
	}
	if got := b.installed()["alpha"]; got != "1" {
		t.Fatalf("after refused updates alpha = %s, want 1 still merged", got)
	}
	// signature = "none" on the entry lets an unsigned release through.
	b.publish("alpha", "2")
	b.e.Manifests.Entries["alpha"].Signature = "none"
	if r := b.apply(VerbUpdate, "alpha"); !r.OK {
		t.Fatalf("update with signature = none: %s", r.Error)
	}
}
