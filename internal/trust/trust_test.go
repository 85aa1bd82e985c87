package trust

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

const ext = "hello"

var (
	required  = Policy{Mode: ModeRequired}
	ifPresent = Policy{Mode: ModeIfPresent}
)

func TestGoodSignature(t *testing.T) {
	tr := newTestRoot(t)
	mini := tr.minisignKey(rootfs.VendorKeysDir, "vendor-mini", ext)
	pgpBin := NewOpenPGPSigner(tr.openpgpKey(rootfs.VendorKeysDir, "vendor-pgp", false, nil, ext))
	pgpArm := NewOpenPGPSigner(tr.openpgpKey(rootfs.LocalKeysDir, "local-pgp", true, nil, ext))
	kr := tr.keyring()
	for _, tt := range []struct {
		name   string
		signer Signer
		key    string
		method string
	}{
		{"minisign", mini, "vendor-mini", MethodMinisign},
		{"openpgp binary key file", pgpBin, "vendor-pgp", MethodOpenPGP},
		{"openpgp armored key file", pgpArm, "local-pgp", MethodOpenPGP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rel := newRelease(t, tt.signer)
			v, err := Check(t.Context(), kr, required, ext, rel, testAsset, sha(rel.assets[testAsset]))
			if err != nil {
				t.Fatal(err)
			}
			want := Verdict{Signed: true, Method: tt.method, KeyID: tt.signer.ID(), KeyName: tt.key}
			if v.Signed != want.Signed || v.Method != want.Method || v.KeyID != want.KeyID || v.KeyName != want.KeyName {
				t.Errorf("verdict = %+v, want %+v", v, want)
			}
			if v.Comment == "" {
				t.Errorf("verdict has no comment: %+v", v)
			}
		})
	}
}

// The armored signature (gpg --armor --detach-sign) is accepted too.
func TestArmoredOpenPGPSignature(t *testing.T) {
	tr := newTestRoot(t)
	e := tr.openpgpKey(rootfs.VendorKeysDir, "v", true, nil, ext)
	rel := newRelease(t)
	var b bytes.Buffer
	if err := openpgpArmorDetachSign(&b, e, rel.assets[SumsFile]); err != nil {
		t.Fatal(err)
	}
	rel.assets[OpenPGPFile] = b.Bytes()
	if _, err := Check(t.Context(), tr.keyring(), required, ext, rel, testAsset, sha(rel.assets[testAsset])); err != nil {
		t.Fatal(err)
	}
}

func TestRefusals(t *testing.T) {
	tr := newTestRoot(t)
	good := tr.minisignKey(rootfs.VendorKeysDir, "good", ext)
	other := tr.minisignKey(rootfs.VendorKeysDir, "other-ext", "open-vm-tools")
	goodPGP := NewOpenPGPSigner(tr.openpgpKey(rootfs.VendorKeysDir, "good-pgp", false, nil, ext))
	otherPGP := NewOpenPGPSigner(tr.openpgpKey(rootfs.LocalKeysDir, "other-pgp", true, nil, "open-vm-tools"))
	kr := tr.keyring()
	stranger := newTestRoot(t).minisignKey(rootfs.VendorKeysDir, "stranger")
	strangerPGP := NewOpenPGPSigner(newTestRoot(t).openpgpKey(rootfs.VendorKeysDir, "stranger", false, nil))

	tamper := func(t *testing.T, r *fakeRelease) {
		r.assets[SumsFile] = append(bytes.Clone(r.assets[SumsFile]), []byte(sha([]byte("x"))+"  evil.squashfs\n")...)
	}
	for _, tt := range []struct {
		name   string
		pol    Policy
		signer Signer
		change func(*testing.T, *fakeRelease)
		want   []string
	}{
		{"minisign by a key not in keys.d", required, stranger, nil,
			[]string{"hello: " + testAsset, "key " + stranger.ID() + " is not in keys.d", "signed by " + stranger.ID(), "keys allowed: good-pgp (" + goodPGP.ID() + "), good (" + good.ID() + ")"}},
		{"openpgp by a key not in keys.d", required, strangerPGP, nil,
			[]string{"is not in keys.d", "signed by " + strangerPGP.ID()}},
		{"minisign by a key for another extension only", required, other, nil,
			[]string{"key other-ext (" + other.ID() + ") may not sign this extension", "keys allowed: good-pgp (" + goodPGP.ID() + "), good (" + good.ID() + ")"}},
		{"openpgp by a key for another extension only", required, otherPGP, nil,
			[]string{"key other-pgp (" + otherPGP.ID() + ") may not sign this extension"}},
		{"tampered SHA256SUMS, minisign", required, good, tamper,
			[]string{"signature by good (" + good.ID() + ") does not match SHA256SUMS"}},
		{"tampered SHA256SUMS, openpgp", required, goodPGP, tamper,
			[]string{"does not match SHA256SUMS", "signed by good-pgp (" + goodPGP.ID() + ")"}},
		{"asset missing from SHA256SUMS", required, good, func(t *testing.T, r *fakeRelease) {
			r.sign(t, []byte(sha([]byte("m"))+"  sysext-hello_trixie_amd64.manifest\n"), good)
		}, []string{"not listed in the signed SHA256SUMS"}},
		{"SHA256SUMS disagrees with the download", required, good, func(t *testing.T, r *fakeRelease) {
			r.sign(t, []byte(sha([]byte("other"))+"  "+testAsset+"\n"), good)
		}, []string{"but the signed SHA256SUMS says " + sha([]byte("other"))}},
		{"required without a signature", required, nil, nil,
			[]string{`release is not signed (no SHA256SUMS.minisig or SHA256SUMS.gpg) and signature = "required"`, "keys allowed: good-pgp (" + goodPGP.ID() + "), good (" + good.ID() + ")"}},
		{"if-present with a bad signature", ifPresent, good, tamper, []string{"does not match SHA256SUMS"}},
		{"if-present signed by a stranger", ifPresent, stranger, nil, []string{"is not in keys.d"}},
		{"signature without SHA256SUMS", ifPresent, good, func(t *testing.T, r *fakeRelease) { delete(r.assets, SumsFile) },
			[]string{"release has a signature but no SHA256SUMS"}},
		{"damaged minisig", required, good, func(t *testing.T, r *fakeRelease) { r.assets[MinisignFile] = []byte("garbage") },
			[]string{"SHA256SUMS.minisig: damaged signature"}},
		{"damaged gpg", required, goodPGP, func(t *testing.T, r *fakeRelease) { r.assets[OpenPGPFile] = []byte("garbage") },
			[]string{"SHA256SUMS.gpg: damaged signature"}},
		{"keys names a key that is not installed", Policy{Mode: ModeRequired, Keys: []string{"nope"}}, good, nil,
			[]string{"key good (" + good.ID() + ") may not sign this extension", "keys allowed: nope (not in keys.d)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var signers []Signer
			if tt.signer != nil {
				signers = append(signers, tt.signer)
			}
			rel := newRelease(t, signers...)
			if tt.change != nil {
				tt.change(t, rel)
			}
			_, err := Check(t.Context(), kr, tt.pol, ext, rel, testAsset, sha(rel.assets[testAsset]))
			refused(t, err, tt.want...)
		})
	}
}

func TestPassWithoutSignature(t *testing.T) {
	tr := newTestRoot(t)
	good := tr.minisignKey(rootfs.VendorKeysDir, "good", ext)
	kr := tr.keyring()

	rel := newRelease(t)
	v, err := Check(t.Context(), kr, ifPresent, ext, rel, testAsset, sha(rel.assets[testAsset]))
	if err != nil || v.Signed || v.String() != "unsigned" {
		t.Errorf("if-present, unsigned: %+v, %v; want unsigned, nil", v, err)
	}

	// none reads nothing, even when the signature is bad.
	rel = newRelease(t, good)
	rel.assets[SumsFile] = []byte("tampered")
	v, err = Check(t.Context(), kr, Policy{Mode: ModeNone}, ext, rel, testAsset, "00")
	if err != nil || v.Signed {
		t.Errorf("none: %+v, %v; want unsigned, nil", v, err)
	}
	if len(rel.fetched) != 0 {
		t.Errorf("none fetched %v", rel.fetched)
	}

	if _, err := Check(t.Context(), kr, Policy{Mode: "sometimes"}, ext, rel, testAsset, "00"); err == nil || !strings.Contains(err.Error(), `unknown signature policy "sometimes"`) {
		t.Errorf("unknown mode: %v", err)
	}
}

// Two keys are valid while a publisher switches: releases signed by either
// pass; once the old one is dropped from keys, its releases are refused.
func TestRotation(t *testing.T) {
	for _, method := range []string{MethodMinisign, MethodOpenPGP} {
		t.Run(method, func(t *testing.T) {
			tr := newTestRoot(t)
			var old, next Signer
			if method == MethodMinisign {
				old = tr.minisignKey(rootfs.VendorKeysDir, "vendor-2026")
				next = tr.minisignKey(rootfs.VendorKeysDir, "vendor-2027")
			} else {
				old = NewOpenPGPSigner(tr.openpgpKey(rootfs.VendorKeysDir, "vendor-2026", true, nil))
				next = NewOpenPGPSigner(tr.openpgpKey(rootfs.VendorKeysDir, "vendor-2027", true, nil))
			}
			kr := tr.keyring()
			// One by file name, the other by id.
			both := Policy{Mode: ModeRequired, Keys: []string{"vendor-2026", strings.ToLower(next.ID())}}
			for _, s := range []Signer{old, next} {
				rel := newRelease(t, s)
				v, err := Check(t.Context(), kr, both, ext, rel, testAsset, sha(rel.assets[testAsset]))
				if err != nil {
					t.Fatalf("signed by %s during the switch: %v", s.ID(), err)
				}
				if v.KeyID != s.ID() {
					t.Errorf("KeyID = %s, want %s", v.KeyID, s.ID())
				}
			}
			after := Policy{Mode: ModeRequired, Keys: []string{"vendor-2027"}}
			rel := newRelease(t, old)
			_, err := Check(t.Context(), kr, after, ext, rel, testAsset, sha(rel.assets[testAsset]))
			refused(t, err, "key vendor-2026 ("+old.ID()+") may not sign this extension", "keys allowed: vendor-2027 ("+next.ID()+")")
			// A release carrying both signatures passes either way.
			rel = newRelease(t, old)
			sig, _ := next.Sign(rel.assets[SumsFile])
			if method == MethodMinisign {
				// one file per method: the new key's signature replaces the old
				rel.assets[MinisignFile] = sig
			} else {
				rel.assets[OpenPGPFile] = append(rel.assets[OpenPGPFile], sig...)
			}
			if _, err := Check(t.Context(), kr, after, ext, rel, testAsset, sha(rel.assets[testAsset])); err != nil {
				t.Errorf("both signatures, new key only: %v", err)
			}
		})
	}
}

func TestExpiredOpenPGPKey(t *testing.T) {
	tr := newTestRoot(t)
	e := tr.openpgpKey(rootfs.VendorKeysDir, "shortlived", true, &packet.Config{KeyLifetimeSecs: 3600}, ext)
	kr := tr.keyring()
	rel := newRelease(t, NewOpenPGPSigner(e))
	if _, err := Check(t.Context(), kr, required, ext, rel, testAsset, sha(rel.assets[testAsset])); err != nil {
		t.Fatalf("within its lifetime: %v", err)
	}
	kr.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	_, err := Check(t.Context(), kr, required, ext, rel, testAsset, sha(rel.assets[testAsset]))
	exp := e.PrimaryKey.CreationTime.Add(time.Hour).UTC().Format("2006-01-02 15:04 MST")
	refused(t, err, fmt.Sprintf("key shortlived (%X) expired on %s", e.PrimaryKey.Fingerprint, exp))
}

func TestRevokedOpenPGPKey(t *testing.T) {
	tr := newTestRoot(t)
	e := tr.openpgpKey(rootfs.VendorKeysDir, "gone", true, nil, ext)
	rel := newRelease(t, NewOpenPGPSigner(e))
	if err := e.RevokeKey(packet.KeyCompromised, "leaked", nil); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tr.root.Path(rootfs.VendorKeysDir+"/gone.asc"), nil)
	writeFile(t, tr.root.Path(rootfs.LocalKeysDir+"/gone.gpg"), b.Bytes())
	_, err := Check(t.Context(), tr.keyring(), required, ext, rel, testAsset, sha(rel.assets[testAsset]))
	refused(t, err, "is revoked")
}

func TestLoadKeyring(t *testing.T) {
	tr := newTestRoot(t)
	tr.minisignKey(rootfs.VendorKeysDir, "vendor", "*")
	masked := tr.minisignKey(rootfs.VendorKeysDir, "masked", ext)
	writeFile(t, tr.root.Path(rootfs.LocalKeysDir+"/masked.pub"), nil)
	replaced := tr.minisignKey(rootfs.VendorKeysDir, "replaced")
	replacement := tr.minisignKey(rootfs.LocalKeysDir, "replaced", "foo", "bar")
	writeFile(t, tr.root.Path(rootfs.LocalKeysDir+"/broken.pub"), []byte("untrusted comment: x\nnot base64\n"))
	writeFile(t, tr.root.Path(rootfs.LocalKeysDir+"/notes.txt"), []byte("hi"))
	writeFile(t, tr.root.Path(rootfs.LocalKeysDir+"/bad.extensions"), []byte("Hello World\n"))
	// a secret key dropped into keys.d by mistake
	e := newTestRoot(t).openpgpKey(rootfs.VendorKeysDir, "x", false, nil)
	var sec bytes.Buffer
	if err := e.SerializePrivate(&sec, nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tr.root.Path(rootfs.LocalKeysDir+"/secret.gpg"), sec.Bytes())

	kr, errs := LoadKeyring(tr.root)
	var msgs []string
	for _, err := range errs {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		"/etc/sysextd/keys.d/broken.pub: not a minisign public key",
		"/etc/sysextd/keys.d/notes.txt: unknown key file type",
		`/etc/sysextd/keys.d/bad.extensions: line 1: invalid extension name "Hello"`,
		"/etc/sysextd/keys.d/secret.gpg: holds an OpenPGP secret key",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("errors %q lack %q", all, want)
		}
	}
	if len(errs) != 4 {
		t.Errorf("got %d errors, want 4: %v", len(errs), all)
	}
	got := map[string]*Key{}
	for _, k := range kr.Keys {
		got[k.Name] = k
	}
	if len(got) != 2 || got["vendor"] == nil || got["replaced"] == nil {
		t.Fatalf("keys = %v, want vendor and replaced", kr.Keys)
	}
	if k := got["replaced"]; k.ID != replacement.ID() || k.ID == replaced.ID() || k.Vendor || !slices.Equal(k.Scope, []string{"foo", "bar"}) {
		t.Errorf("replaced = %+v, want the local key %s with scope foo bar", k, replacement.ID())
	}
	if k := got["vendor"]; !k.Vendor || k.Path != rootfs.VendorKeysDir+"/vendor.pub" || !k.scoped("anything") {
		t.Errorf("vendor = %+v", k)
	}
	for _, k := range kr.Keys {
		if k.ID == masked.ID() {
			t.Errorf("masked key loaded: %+v", k)
		}
	}
	if !kr.HasVendorKeys() {
		t.Error("HasVendorKeys = false")
	}
	empty, errs := LoadKeyring(rootfs.New(t.TempDir()))
	if len(errs) != 0 || len(empty.Keys) != 0 || empty.HasVendorKeys() {
		t.Errorf("no keys.d: %v, %v", empty.Keys, errs)
	}
}

func TestPolicyFor(t *testing.T) {
	tr := newTestRoot(t)
	noVendor := tr.keyring()
	tr.minisignKey(rootfs.LocalKeysDir, "ops", "hello")
	scoped := tr.keyring()
	tr.minisignKey(rootfs.VendorKeysDir, "vendor", "*")
	withVendor := tr.keyring()
	// A local file replacing the vendor's key of the same name.
	replaced := newTestRoot(t)
	replaced.minisignKey(rootfs.VendorKeysDir, "vendor", "*")
	replaced.minisignKey(rootfs.LocalKeysDir, "vendor", "*")
	// A vendor key file that does not parse.
	broken := newTestRoot(t)
	writeFile(t, broken.root.Path(rootfs.VendorKeysDir+"/vendor.pub"), []byte("not a key\n"))
	brokenKR, errs := LoadKeyring(broken.root)
	if len(errs) != 1 || len(brokenKR.VendorBroken) != 1 {
		t.Fatalf("broken vendor key: errs %v, VendorBroken %v", errs, brokenKR.VendorBroken)
	}
	for _, tt := range []struct {
		name       string
		kr         *Keyring
		entry      string
		keys       []string
		ext        string
		vendor     bool
		def, want  string
		wantReason string
		wantBroken bool
	}{
		{"built-in default", noVendor, "", nil, "x", true, "", ModeIfPresent, "built-in default", false},
		{"config default", noVendor, "", nil, "x", true, ModeRequired, ModeRequired, "sysextd.toml default", false},
		{"vendor key makes vendor entries required", withVendor, "", nil, "x", true, ModeNone, ModeRequired, "vendor entry and the vendor ships a key", false},
		{"but not local entries", withVendor, "", nil, "x", false, ModeNone, ModeNone, "sysextd.toml default", false},
		{"entry wins", withVendor, ModeIfPresent, nil, "x", true, ModeRequired, ModeIfPresent, "manifest entry: signature = if-present", false},
		{"nil keyring", nil, "", nil, "x", true, "", ModeIfPresent, "built-in default", false},
		{"keys named in the entry make it required", noVendor, "", []string{"k"}, "x", false, ModeIfPresent, ModeRequired, "manifest entry names its keys", false},
		{"a key scoped to the extension makes it required", scoped, "", nil, "hello", false, ModeIfPresent, ModeRequired, "a key's .extensions file names it", false},
		{"a key scoped to another extension does not", scoped, "", nil, "other", false, "", ModeIfPresent, "built-in default", false},
		{"a local key replacing the vendor's keeps vendor entries required", replaced.keyring(), "", nil, "x", true, ModeNone, ModeRequired, "vendor entry and the vendor ships a key", false},
		{"a broken vendor key refuses vendor entries", brokenKR, "", nil, "x", true, ModeNone, ModeRequired, "vendor entry and the vendor ships a key", true},
		{"a broken vendor key does not touch local entries", brokenKR, "", nil, "x", false, "", ModeIfPresent, "built-in default", false},
		{"only signature = none weakens a broken vendor key", brokenKR, ModeNone, nil, "x", true, "", ModeNone, "manifest entry: signature = none", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := PolicyFor(tt.kr, tt.entry, tt.keys, tt.vendor, tt.def, tt.ext)
			if p.Mode != tt.want || p.Reason != tt.wantReason || !slices.Equal(p.Keys, tt.keys) || (p.Broken != "") != tt.wantBroken {
				t.Errorf("PolicyFor = %+v, want mode %s reason %q broken %v", p, tt.want, tt.wantReason, tt.wantBroken)
			}
			if tt.wantBroken {
				_, err := Check(t.Context(), tt.kr, p, "x", nil, "x.raw", "00")
				var te *Error
				if !errors.As(err, &te) || !strings.Contains(err.Error(), rootfs.VendorKeysDir+"/vendor.pub") {
					t.Errorf("Check under a broken vendor key = %v, want a refusal naming the file", err)
				}
			}
		})
	}
}

// Signatures in minisign's legacy (not pre-hashed) form verify too.
func TestLegacyMinisignSignature(t *testing.T) {
	tr := newTestRoot(t)
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	writeFile(t, tr.root.Path(rootfs.VendorKeysDir+"/legacy.pub"), text)
	tr.scope(rootfs.VendorKeysDir, "legacy", ext)
	rel := newRelease(t)
	rel.assets[MinisignFile] = minisign.Sign(priv, rel.assets[SumsFile])
	if _, err := Check(t.Context(), tr.keyring(), required, ext, rel, testAsset, sha(rel.assets[testAsset])); err != nil {
		t.Fatal(err)
	}
}

func TestKeyringSymlinks(t *testing.T) {
	tr := newTestRoot(t)
	tr.minisignKey(rootfs.VendorKeysDir, "masked", "*")
	local := tr.root.Path(rootfs.LocalKeysDir)
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	// masked the systemd way
	if err := os.Symlink("/dev/null", filepath.Join(local, "masked.pub")); err != nil {
		t.Fatal(err)
	}
	// a key outside the root is not read, even through an absolute link
	outside := filepath.Join(t.TempDir(), "host.pub")
	pub, _, _ := minisign.GenerateKey(nil)
	text, _ := pub.MarshalText()
	writeFile(t, outside, text)
	if err := os.Symlink(outside, filepath.Join(local, "escape.pub")); err != nil {
		t.Fatal(err)
	}
	kr, errs := LoadKeyring(tr.root)
	if len(kr.Keys) != 0 {
		t.Errorf("keys = %v, want none", kr.Keys)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "reading key /etc/sysextd/keys.d/escape.pub") {
		t.Errorf("errs = %v, want one naming escape.pub", errs)
	}
}
