package trust

import (
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// FuzzSignature feeds arbitrary bytes as SHA256SUMS.minisig and as
// SHA256SUMS.gpg, the parts of a release an attacker controls besides the
// list itself. Check must never panic, and never pass a release unless a
// signature verifies with one of the allowed keys.
func FuzzSignature(f *testing.F) {
	tr := newTestRoot(f)
	mini := tr.minisignKey(rootfs.VendorKeysDir, "mini", ext)
	pgp := NewOpenPGPSigner(tr.openpgpKey(rootfs.VendorKeysDir, "pgp", false, nil, ext))
	kr := tr.keyring()
	good := newRelease(f, mini, pgp)
	f.Add(good.assets[MinisignFile], false)
	f.Add(good.assets[OpenPGPFile], true)
	f.Add([]byte("untrusted comment: x\nRWQ=\ntrusted comment: y\nAAAA\n"), false)
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"), true)
	f.Fuzz(func(t *testing.T, sig []byte, openpgp bool) {
		rel := &fakeRelease{assets: map[string][]byte{testAsset: good.assets[testAsset], SumsFile: good.assets[SumsFile]}}
		file := MinisignFile
		if openpgp {
			file = OpenPGPFile
		}
		rel.assets[file] = sig
		v, err := Check(t.Context(), kr, required, ext, rel, testAsset, sha(good.assets[testAsset]))
		if err != nil {
			return
		}
		if !v.Signed || (v.KeyID != mini.ID() && v.KeyID != pgp.ID()) {
			t.Fatalf("passed with verdict %+v", v)
		}
	})
}
