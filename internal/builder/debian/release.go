package debian

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// Release is the part of a suite's Release/InRelease file that matters
// here: which index files exist and their SHA-256.
type Release struct {
	Suite, Codename string
	// ValidUntil is when the signed file expires (zero when it does not
	// say); apt refuses an expired one, and so does Archive.Release, so
	// that an old signed file cannot be replayed to hide updates.
	ValidUntil time.Time
	// SHA256 maps a path relative to dists/SUITE/ (main/binary-amd64/Packages.xz)
	// to its checksum and size.
	SHA256 map[string]FileSum
}

// FileSum is a file's expected size and lower-case hex SHA-256.
type FileSum struct {
	Size int64
	Hash string
}

// ErrUnsigned is returned when an InRelease file has no valid signature
// from a key of the keyring.
var ErrUnsigned = errors.New("no valid signature from the archive keyring")

// ParseRelease reads an (unsigned) Release file body.
func ParseRelease(b []byte, name string) (*Release, error) {
	st, err := ParseStanzas(bytes.NewReader(b), name)
	if err != nil {
		return nil, err
	}
	if len(st) == 0 {
		return nil, fmt.Errorf("%s: empty Release file", name)
	}
	s := st[0]
	r := &Release{Suite: s.Get("Suite"), Codename: s.Get("Codename"), SHA256: map[string]FileSum{}}
	if v := s.Get("Valid-Until"); v != "" {
		t, err := parseReleaseDate(v)
		if err != nil {
			return nil, fmt.Errorf("%s: bad Valid-Until %q: %w", name, v, err)
		}
		r.ValidUntil = t
	}
	for i, line := range strings.Split(s.Get("SHA256"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || len(f[0]) != 64 {
			return nil, fmt.Errorf("%s: SHA256 entry %d: %q is not \"HASH SIZE PATH\"", name, i+1, truncate(line, 80))
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s: SHA256 entry %d: bad size %q", name, i+1, f[1])
		}
		r.SHA256[f[2]] = FileSum{Size: n, Hash: strings.ToLower(f[0])}
	}
	if len(r.SHA256) == 0 {
		return nil, fmt.Errorf("%s: no SHA256 file list", name)
	}
	return r, nil
}

// parseReleaseDate reads the RFC 2822 dates of Release files
// ("Sat, 06 Dec 2025 08:51:46 UTC").
func parseReleaseDate(v string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		var t time.Time
		if t, err = time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// VerifyInRelease checks the clearsigned InRelease data against keyring
// and returns the signed body and the signer. Only the signed text is
// returned: anything outside the signature is dropped.
func VerifyInRelease(data []byte, keyring openpgp.EntityList) ([]byte, *openpgp.Entity, error) {
	block, _ := clearsign.Decode(data)
	if block == nil {
		return nil, nil, fmt.Errorf("not a clearsigned document: %w", ErrUnsigned)
	}
	if len(keyring) == 0 {
		return nil, nil, fmt.Errorf("empty keyring: %w", ErrUnsigned)
	}
	signer, err := openpgp.CheckDetachedSignature(keyring, bytes.NewReader(block.Bytes), block.ArmoredSignature.Body, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnsigned, err)
	}
	return block.Plaintext, signer, nil
}

// ReadKeyring reads a binary or armored OpenPGP keyring (the
// debian-archive-keyring .gpg/.pgp files are binary).
func ReadKeyring(b []byte) (openpgp.EntityList, error) {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		return openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	}
	return openpgp.ReadKeyRing(bytes.NewReader(b))
}
