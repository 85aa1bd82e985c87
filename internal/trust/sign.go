package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Signer makes the detached signature of a SHA256SUMS.
type Signer interface {
	// File is the signature's asset name: MinisignFile or OpenPGPFile.
	File() string
	// ID is the key id, as Key.ID spells it.
	ID() string
	Sign(sums []byte) ([]byte, error)
}

type minisignSigner struct {
	key     minisign.PrivateKey
	expires time.Duration
}

// NewMinisignSigner signs with a minisign secret key, pre-hashed as
// minisign 0.10+ does by default.
func NewMinisignSigner(key minisign.PrivateKey) Signer { return minisignSigner{key: key} }

// WithExpiry returns s signing with an expiry d after the signing time,
// written into the signed data: minisign's trusted comment (expires=UNIX)
// or OpenPGP's signature expiration subpacket. A verifier refuses the
// signature after it, so a mirror cannot keep serving an old release
// forever. d <= 0 returns s unchanged.
func WithExpiry(s Signer, d time.Duration) Signer {
	if d <= 0 {
		return s
	}
	switch x := s.(type) {
	case minisignSigner:
		x.expires = d
		return x
	case openpgpSigner:
		x.expires = d
		return x
	}
	return s
}

func (s minisignSigner) File() string { return MinisignFile }
func (s minisignSigner) ID() string   { return minisignID(s.key.ID()) }
func (s minisignSigner) Sign(sums []byte) ([]byte, error) {
	r := minisign.NewReader(bytes.NewReader(sums))
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	now := time.Now()
	trusted := fmt.Sprintf("timestamp:%d\tfile:%s\thashed", now.Unix(), SumsFile)
	if s.expires > 0 {
		trusted += fmt.Sprintf("\texpires=%d", now.Add(s.expires).Unix())
	}
	return r.SignWithComments(s.key, trusted, "signature from sysextctl sign, key "+s.ID()), nil
}

type openpgpSigner struct {
	e       *openpgp.Entity
	expires time.Duration
}

// NewOpenPGPSigner signs with an OpenPGP key whose secret parts are
// decrypted; the signature is binary, as gpg --detach-sign writes it.
func NewOpenPGPSigner(e *openpgp.Entity) Signer { return openpgpSigner{e: e} }

func (s openpgpSigner) File() string { return OpenPGPFile }
func (s openpgpSigner) ID() string   { return fmt.Sprintf("%X", s.e.PrimaryKey.Fingerprint) }
func (s openpgpSigner) Sign(sums []byte) ([]byte, error) {
	var b bytes.Buffer
	var cfg *packet.Config
	if s.expires > 0 {
		cfg = &packet.Config{SigLifetimeSecs: uint32(s.expires / time.Second)}
	}
	if err := openpgp.DetachSign(&b, s.e, bytes.NewReader(sums), cfg); err != nil {
		return nil, fmt.Errorf("signing with OpenPGP key %s: %w", s.ID(), err)
	}
	return b.Bytes(), nil
}

// LoadSigner reads a secret key file: a minisign secret key (encrypted or
// not) or an OpenPGP secret key (armored or binary). password decrypts it
// when it is encrypted.
func LoadSigner(path string, password []byte) (Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")), len(trimmed) > 0 && trimmed[0]&0x80 != 0:
		return loadOpenPGPSigner(path, trimmed, password)
	case minisign.IsEncrypted(trimmed):
		if password == nil {
			return nil, fmt.Errorf("%s: encrypted minisign secret key: give its password", path)
		}
		k, err := minisign.DecryptKey(string(password), trimmed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return NewMinisignSigner(k), nil
	}
	var k minisign.PrivateKey
	if err := k.UnmarshalText(trimmed); err != nil {
		return nil, fmt.Errorf("%s: not a minisign or OpenPGP secret key: %w", path, err)
	}
	return NewMinisignSigner(k), nil
}

func loadOpenPGPSigner(path string, data, password []byte) (Signer, error) {
	var el openpgp.EntityList
	var err error
	if bytes.HasPrefix(data, []byte("-----BEGIN")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not an OpenPGP secret key: %w", path, err)
	}
	for _, e := range el {
		if e.PrivateKey == nil {
			continue
		}
		if e.PrivateKey.Encrypted {
			if password == nil {
				return nil, fmt.Errorf("%s: encrypted OpenPGP secret key: give its passphrase", path)
			}
			if err := e.DecryptPrivateKeys(password); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		return NewOpenPGPSigner(e), nil
	}
	return nil, fmt.Errorf("%s: holds no OpenPGP secret key", path)
}

// isSumsFile reports whether name is SHA256SUMS or one of its signatures.
func isSumsFile(name string) bool {
	return name == SumsFile || strings.HasPrefix(name, SumsFile+".")
}

// SumDir hashes every regular, non-hidden file in dir except SHA256SUMS
// and its signatures.
func SumDir(dir string) (map[string]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || isSumsFile(e.Name()) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("hashing %s: %w", e.Name(), err)
		}
		sums[e.Name()] = hex.EncodeToString(h.Sum(nil))
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("%s: no assets to sign", dir)
	}
	return sums, nil
}

// SignDir writes dir/SHA256SUMS for every asset in dir and one signature
// per signer, each file replaced atomically. A signature file left from an
// earlier run by a method no signer uses now is removed, so that it cannot
// disagree with the new list. It returns the sums listed and the names of
// the files written.
func SignDir(dir string, signers []Signer) (sums map[string]string, written []string, err error) {
	if len(signers) == 0 {
		return nil, nil, errors.New("no signing key")
	}
	seen := map[string]bool{}
	for _, s := range signers {
		if seen[s.File()] {
			return nil, nil, fmt.Errorf("two keys would both write %s", s.File())
		}
		seen[s.File()] = true
	}
	sums, err = SumDir(dir)
	if err != nil {
		return nil, nil, err
	}
	data := FormatSums(sums)
	out := map[string][]byte{SumsFile: data}
	for _, s := range signers {
		sig, err := s.Sign(data)
		if err != nil {
			return nil, nil, err
		}
		out[s.File()] = sig
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := writeAtomic(filepath.Join(dir, n), out[n]); err != nil {
			return nil, nil, err
		}
	}
	for _, stale := range []string{MinisignFile, OpenPGPFile} {
		if !seen[stale] {
			if err := os.Remove(filepath.Join(dir, stale)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, nil, err
			}
		}
	}
	return sums, names, nil
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
