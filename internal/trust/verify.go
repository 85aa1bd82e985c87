package trust

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// describe names a signing key id for a message: "NAME (ID)" when the
// keyring holds it, else the bare id.
func (kr *Keyring) describe(k *Key, id string) string {
	if k != nil {
		return k.String()
	}
	return id
}

// notAllowed explains why a signer known by id is not acceptable.
func notAllowed(k *Key, id string) error {
	if k != nil {
		return fmt.Errorf("key %s may not sign this extension", k)
	}
	return fmt.Errorf("key %s is not in keys.d", id)
}

// verifyMinisign checks sig over sums with the allowed minisign keys. It
// returns the ids the signature names even when it fails.
func (kr *Keyring) verifyMinisign(allowed []*Key, sums, sig []byte) (Verdict, []string, error) {
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return Verdict{}, nil, fmt.Errorf("damaged signature: %v", err)
	}
	id := minisignID(s.KeyID)
	var known *Key
	if kr != nil {
		for _, k := range kr.Keys {
			if k.Method == MethodMinisign && k.mini.ID() == s.KeyID {
				known = k
				break
			}
		}
	}
	found := []string{kr.describe(known, id)}
	for _, k := range allowed {
		if k.Method != MethodMinisign || k.mini.ID() != s.KeyID {
			continue
		}
		if !minisign.Verify(k.mini, sums, sig) {
			return Verdict{}, found, fmt.Errorf("signature by %s does not match %s (altered, or a damaged signature)", k, SumsFile)
		}
		v := Verdict{Signed: true, Method: MethodMinisign, KeyID: k.ID, KeyName: k.Name, Comment: s.TrustedComment}
		v.SignedAt, v.Expires = trustedTimes(s.TrustedComment)
		return v, found, nil
	}
	return Verdict{}, found, notAllowed(known, id)
}

// pgpKeyFor finds the keyring's OpenPGP key whose primary key or a subkey
// has the long id.
func (kr *Keyring) pgpKeyFor(id uint64) *Key {
	if kr == nil {
		return nil
	}
	for _, k := range kr.Keys {
		if k.Method != MethodOpenPGP {
			continue
		}
		if k.pgp.PrimaryKey.KeyId == id {
			return k
		}
		for _, sk := range k.pgp.Subkeys {
			if sk.PublicKey.KeyId == id {
				return k
			}
		}
	}
	return nil
}

// verifyOpenPGP checks a detached OpenPGP signature (binary or armored)
// over sums with the allowed OpenPGP keys, at the keyring's clock: an
// expired or revoked key is refused with that reason.
func (kr *Keyring) verifyOpenPGP(allowed []*Key, sums, sig []byte) (Verdict, []string, error) {
	body := sig
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN")) {
		blk, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return Verdict{}, nil, fmt.Errorf("damaged signature: %v", err)
		}
		if body, err = io.ReadAll(io.LimitReader(blk.Body, maxSums)); err != nil {
			return Verdict{}, nil, fmt.Errorf("damaged signature: %v", err)
		}
	}
	var found []string
	var known *Key
	var issuer string
	var signedAt, expires time.Time
	pr := packet.NewReader(bytes.NewReader(body))
	for {
		p, err := pr.Next()
		if err != nil {
			if err != io.EOF {
				return Verdict{}, found, fmt.Errorf("damaged signature: %v", err)
			}
			break
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return Verdict{}, found, errors.New("damaged signature: not a detached signature")
		}
		if s.IssuerKeyId == nil {
			continue
		}
		if signedAt.IsZero() {
			signedAt = s.CreationTime
			if s.SigLifetimeSecs != nil && *s.SigLifetimeSecs > 0 {
				expires = s.CreationTime.Add(time.Duration(*s.SigLifetimeSecs) * time.Second)
			}
		}
		id := fmt.Sprintf("%016X", *s.IssuerKeyId)
		if s.IssuerFingerprint != nil {
			id = fmt.Sprintf("%X", s.IssuerFingerprint)
		}
		k := kr.pgpKeyFor(*s.IssuerKeyId)
		if known == nil {
			known, issuer = k, id
		}
		found = append(found, kr.describe(k, id))
	}
	if len(found) == 0 {
		return Verdict{}, nil, errors.New("damaged signature: no signature naming its key")
	}
	var el openpgp.EntityList
	byEntity := map[*openpgp.Entity]*Key{}
	for _, k := range allowed {
		if k.Method == MethodOpenPGP {
			el = append(el, k.pgp)
			byEntity[k.pgp] = k
		}
	}
	signer, err := openpgp.CheckDetachedSignature(el, bytes.NewReader(sums), bytes.NewReader(body), &packet.Config{Time: kr.now})
	k := byEntity[signer]
	switch {
	case err == nil && k != nil:
		return Verdict{Signed: true, Method: MethodOpenPGP, KeyID: k.ID, KeyName: k.Name, Comment: k.Comment, SignedAt: signedAt, Expires: expires}, found, nil
	case errors.Is(err, pgperrors.ErrSignatureExpired) && !expires.IsZero():
		return Verdict{}, found, &ExpiredError{Expired: expires}
	case errors.Is(err, pgperrors.ErrUnknownIssuer) || len(el) == 0:
		return Verdict{}, found, notAllowed(known, issuer)
	case errors.Is(err, pgperrors.ErrKeyExpired) && k != nil:
		if at, ok := pgpExpiry(k.pgp); ok {
			return Verdict{}, found, fmt.Errorf("key %s expired on %s", k, at.UTC().Format("2006-01-02 15:04 MST"))
		}
		return Verdict{}, found, fmt.Errorf("key %s (or its signing subkey) has expired", k)
	case errors.Is(err, pgperrors.ErrKeyRevoked) && k != nil:
		return Verdict{}, found, fmt.Errorf("key %s is revoked", k)
	case err == nil:
		return Verdict{}, found, errors.New("signer not in the allowed keys")
	}
	return Verdict{}, found, fmt.Errorf("signature does not match %s (altered, or a damaged signature): %v", SumsFile, err)
}

// trustedTimes reads minisign's trusted comment: "timestamp:UNIX" (what
// minisign and sysextctl sign write) and "expires=UNIX" or
// "expires=RFC3339" (sysextctl sign --expires), tab- or space-separated.
// Unreadable values count as absent.
func trustedTimes(comment string) (signed, expires time.Time) {
	for _, f := range strings.FieldsFunc(comment, func(r rune) bool { return r == '\t' || r == ' ' }) {
		if v, ok := strings.CutPrefix(f, "timestamp:"); ok {
			signed = parseTime(v)
		}
		if v, ok := strings.CutPrefix(f, "expires="); ok {
			expires = parseTime(v)
		}
	}
	return signed, expires
}

func parseTime(v string) time.Time {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC()
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC()
	}
	return time.Time{}
}
