package trust

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

const testAsset = "sysext-hello_trixie_amd64.squashfs"

// fakeRelease is a release held in memory; fetched records what was read.
type fakeRelease struct {
	assets  map[string][]byte
	fetched []string
}

func (r *fakeRelease) HasAsset(name string) bool { _, ok := r.assets[name]; return ok }
func (r *fakeRelease) FetchAsset(_ context.Context, name string) ([]byte, error) {
	r.fetched = append(r.fetched, name)
	b, ok := r.assets[name]
	if !ok {
		return nil, fmt.Errorf("%s: not found", name)
	}
	return b, nil
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// newRelease builds a release with the test image, a .manifest, and a
// SHA256SUMS over both signed by signers.
func newRelease(t testing.TB, signers ...Signer) *fakeRelease {
	t.Helper()
	r := &fakeRelease{assets: map[string][]byte{
		testAsset:                            []byte("squashfs image bytes"),
		"sysext-hello_trixie_amd64.manifest": []byte("ID=debian\n"),
	}}
	sums := map[string]string{}
	for n, b := range r.assets {
		sums[n] = sha(b)
	}
	r.sign(t, FormatSums(sums), signers...)
	return r
}

// sign replaces SHA256SUMS by data and signs it with signers.
func (r *fakeRelease) sign(t testing.TB, data []byte, signers ...Signer) {
	t.Helper()
	r.assets[SumsFile] = data
	for _, s := range signers {
		sig, err := s.Sign(data)
		if err != nil {
			t.Fatal(err)
		}
		r.assets[s.File()] = sig
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testRoot is a root with keys.d directories.
type testRoot struct {
	t    testing.TB
	root rootfs.Root
}

func newTestRoot(t testing.TB) *testRoot { return &testRoot{t: t, root: rootfs.New(t.TempDir())} }

// minisignKey writes NAME.pub under dir (a keys.d) with the extensions it
// may sign (none: no scope file) and returns its signer.
func (tr *testRoot) minisignKey(dir, name string, scope ...string) Signer {
	tr.t.Helper()
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		tr.t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	writeFile(tr.t, tr.root.Path(dir+"/"+name+".pub"), text)
	tr.scope(dir, name, scope...)
	return NewMinisignSigner(priv)
}

// openpgpKey writes NAME.asc (armored) or NAME.gpg under dir and returns
// the entity (with its secret key).
func (tr *testRoot) openpgpKey(dir, name string, armored bool, cfg *packet.Config, scope ...string) *openpgp.Entity {
	tr.t.Helper()
	if cfg == nil {
		cfg = &packet.Config{}
	}
	cfg.Algorithm = packet.PubKeyAlgoEdDSA
	e, err := openpgp.NewEntity(name, "", name+"@example.org", cfg)
	if err != nil {
		tr.t.Fatal(err)
	}
	var b bytes.Buffer
	ext := ".gpg"
	if armored {
		ext = ".asc"
		w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
		if err != nil {
			tr.t.Fatal(err)
		}
		if err := e.Serialize(w); err != nil {
			tr.t.Fatal(err)
		}
		w.Close()
	} else if err := e.Serialize(&b); err != nil {
		tr.t.Fatal(err)
	}
	writeFile(tr.t, tr.root.Path(dir+"/"+name+ext), b.Bytes())
	tr.scope(dir, name, scope...)
	return e
}

func (tr *testRoot) scope(dir, name string, scope ...string) {
	if len(scope) > 0 {
		writeFile(tr.t, tr.root.Path(dir+"/"+name+scopeSuffix), []byte("# test\n"+strings.Join(scope, "\n")+"\n"))
	}
}

func (tr *testRoot) keyring() *Keyring {
	tr.t.Helper()
	kr, errs := LoadKeyring(tr.root)
	if len(errs) > 0 {
		tr.t.Fatalf("LoadKeyring: %v", errs)
	}
	return kr
}

// refused asserts err is a *Error whose message contains every want.
func refused(t *testing.T, err error, want ...string) *Error {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want a refusal (*trust.Error)", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	return te
}

func openpgpArmorDetachSign(w *bytes.Buffer, e *openpgp.Entity, data []byte) error {
	return openpgp.ArmoredDetachSign(w, e, bytes.NewReader(data), nil)
}
