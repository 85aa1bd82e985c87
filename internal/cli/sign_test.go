package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/trust"
)

// dirRelease serves a release directory to trust.Check.
type dirRelease string

func (d dirRelease) HasAsset(name string) bool {
	_, err := os.Stat(filepath.Join(string(d), name))
	return err == nil
}
func (d dirRelease) FetchAsset(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), name))
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Run(t.Context(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestSign(t *testing.T) {
	tmp := t.TempDir()
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := priv.MarshalText()
	encrypted := cheapEncryptedKey(t, plain, "s3cret")
	write := func(name string, data []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plainKey, encKey := write("plain.key", plain), write("enc.key", encrypted)
	pwFile := write("pw", []byte("s3cret\n"))

	// The appliance side: the public key in keys.d, allowed for hello.
	root := rootfs.New(t.TempDir())
	pubText, _ := pub.MarshalText()
	if err := os.MkdirAll(root.Path(rootfs.VendorKeysDir), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(root.Path(rootfs.VendorKeysDir+"/vendor.pub"), pubText, 0o644)
	os.WriteFile(root.Path(rootfs.VendorKeysDir+"/vendor.extensions"), []byte("hello\n"), 0o644)
	kr, errs := trust.LoadKeyring(root)
	if len(errs) > 0 {
		t.Fatal(errs)
	}

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"plain key", []string{"--key", plainKey}},
		{"encrypted key", []string{"--key", encKey, "--password-file", pwFile}},
		{"with an expiry", []string{"--key", plainKey, "--expires", "720h"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "sysext-hello_trixie_amd64.squashfs"), []byte("image"), 0o644)
			os.WriteFile(filepath.Join(dir, "release.json"), []byte("{}"), 0o644)
			code, out, errOut := runCLI(t, append(append([]string{"sign", "--json"}, tt.args...), dir)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var res signResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if strings.Join(res.Assets, " ") != "release.json sysext-hello_trixie_amd64.squashfs" || len(res.Signatures) != 1 ||
				res.Signatures[0].File != trust.MinisignFile || res.Signatures[0].KeyID != kr.Keys[0].ID {
				t.Errorf("result = %+v", res)
			}
			v, err := trust.Check(t.Context(), kr, trust.Policy{Mode: trust.ModeRequired}, "hello", dirRelease(dir),
				"sysext-hello_trixie_amd64.squashfs", "6105d6cc76af400325e94d588ce511be5bfdbb73b437dc51eca43917d7a43e3d")
			if err != nil || v.KeyName != "vendor" {
				t.Errorf("Check = %+v, %v", v, err)
			}
			if wantExpiry := slices.Contains(tt.args, "--expires"); wantExpiry != !v.Expires.IsZero() ||
				(wantExpiry && v.Expires.Sub(v.SignedAt) != 720*time.Hour) {
				t.Errorf("signed %v, expires %v; want an expiry 720h after signing: %v", v.SignedAt, v.Expires, wantExpiry)
			}
		})
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no key", []string{"sign", dir}, ExitUsage, "--key FILE is required"},
		{"encrypted without password", []string{"sign", "--key", encKey, dir}, ExitUsage, "enc.key: encrypted minisign secret key"},
		{"wrong password", []string{"sign", "--key", encKey, "--password-file", plainKey, dir}, ExitUsage, "enc.key"},
		{"not a key", []string{"sign", "--key", pwFile, dir}, ExitUsage, "pw: not a minisign or OpenPGP secret key"},
		{"empty dir", []string{"sign", "--key", plainKey, t.TempDir()}, ExitFailure, "no assets to sign"},
		{"no dir", []string{"sign", "--key", plainKey, filepath.Join(tmp, "nope")}, ExitFailure, "nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, trust.SumsFile)); !os.IsNotExist(err) {
		t.Errorf("a failed sign wrote %s: %v", trust.SumsFile, err)
	}
}

// cheapEncryptedKey encrypts a minisign secret key (as MarshalText writes
// it) the way minisign does, but with scrypt costs low enough for a unit
// test (minisign's own take ~9 s and 1 GiB each way): ops 2^15 and mem
// 2^21 make N=1024, r=8, p=1.
func cheapEncryptedKey(t *testing.T, plainText []byte, password string) []byte {
	t.Helper()
	body := plainText[bytes.IndexByte(plainText, '\n')+1:]
	b, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(body)))
	if err != nil || len(b) != 158 {
		t.Fatalf("unexpected minisign secret key layout: %d bytes, %v", len(b), err)
	}
	const ops, mem = 1 << 15, 1 << 21
	binary.LittleEndian.PutUint16(b[2:], 0x6353) // "Sc"
	copy(b[6:38], bytes.Repeat([]byte{7}, 32))   // salt
	binary.LittleEndian.PutUint64(b[38:], ops)
	binary.LittleEndian.PutUint64(b[46:], mem)
	plain := append([]byte(nil), b[54:126]...)
	msg := append([]byte{0x45, 0x64}, plain...) // EdDSA, little-endian
	tag := blake2b.Sum256(msg)
	stream, err := scrypt.Key([]byte(password), b[6:38], 1024, 8, 1, 104)
	if err != nil {
		t.Fatal(err)
	}
	ct := append(plain, tag[:]...)
	for i := range ct {
		ct[i] ^= stream[i]
	}
	copy(b[54:], ct)
	out := "untrusted comment: minisign encrypted secret key\n" + base64.StdEncoding.EncodeToString(b) + "\n"
	if !minisign.IsEncrypted([]byte(out)) {
		t.Fatal("crafted key is not seen as encrypted")
	}
	return []byte(out)
}
