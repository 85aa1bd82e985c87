package trust

import (
	"fmt"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// BenchmarkCheck is the verify phase's cost per image, by method, with a
// SHA256SUMS of a realistic size (4 assets per dist and arch, 8 builds).
func BenchmarkCheck(b *testing.B) {
	tr := newTestRoot(b)
	signers := map[string]Signer{
		MethodMinisign: tr.minisignKey(rootfs.VendorKeysDir, "mini", "*"),
		MethodOpenPGP:  NewOpenPGPSigner(tr.openpgpKey(rootfs.VendorKeysDir, "pgp", false, nil, "*")),
	}
	kr := tr.keyring()
	for _, m := range []string{MethodMinisign, MethodOpenPGP} {
		b.Run(m, func(b *testing.B) {
			rel := newRelease(b)
			sums := map[string]string{}
			for i := range 32 {
				sums[fmt.Sprintf("sysext-hello_%d.squashfs", i)] = sha([]byte{byte(i)})
			}
			sums[testAsset] = sha(rel.assets[testAsset])
			rel.sign(b, FormatSums(sums), signers[m])
			want := sha(rel.assets[testAsset])
			for b.Loop() {
				if _, err := Check(b.Context(), kr, required, ext, rel, testAsset, want); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoadKeyring reads 10 minisign and 10 OpenPGP keys.
func BenchmarkLoadKeyring(b *testing.B) {
	tr := newTestRoot(b)
	for i := range 10 {
		tr.minisignKey(rootfs.VendorKeysDir, fmt.Sprintf("m%d", i), "*")
		tr.openpgpKey(rootfs.LocalKeysDir, fmt.Sprintf("p%d", i), true, nil, "*")
	}
	for b.Loop() {
		if kr, errs := LoadKeyring(tr.root); len(errs) > 0 || len(kr.Keys) != 20 {
			b.Fatal(errs)
		}
	}
}
