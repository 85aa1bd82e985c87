// Package trust decides whether a release is signed by a key allowed to
// sign the extension it carries. A release lists every asset in a
// SHA256SUMS file, signed with minisign (SHA256SUMS.minisig) or OpenPGP
// (SHA256SUMS.gpg, the systemd-sysupdate convention); keys live in the
// vendor's and the administrator's keys.d; each extension has a policy
// (required, if-present, none) and a set of keys that may sign it. The
// package also writes signed checksum lists for publishers (Sign).
package trust

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Signature policies.
const (
	ModeRequired  = "required"
	ModeIfPresent = "if-present"
	ModeNone      = "none"
)

// ValidMode reports whether s is a policy a manifest or sysextd.toml may name.
func ValidMode(s string) bool {
	return s == ModeRequired || s == ModeIfPresent || s == ModeNone
}

// Policy is what one extension demands of its releases.
type Policy struct {
	// Mode is required, if-present or none.
	Mode string `json:"mode"`
	// Keys are the key names (file stems) or ids allowed to sign the
	// extension. Empty means every key whose NAME.extensions file names the
	// extension (or "*").
	Keys []string `json:"keys,omitempty"`
	// Reason says where Mode came from, for explain.
	Reason string `json:"reason,omitempty"`
	// Broken, when set, is why the vendor's keys could not be loaded:
	// Check refuses every release under this policy.
	Broken string `json:"broken,omitempty"`
}

// PolicyFor resolves an extension's policy, first found: the entry's own
// signature (the only setting that may weaken a policy, and explain says
// so); "required" for a vendor entry once the vendor ships a key file
// (whether it loaded, was replaced by a local file or is broken);
// "required" when a key is named for the extension (the entry's keys, or
// a NAME.extensions file naming it); the sysextd.toml default; else
// if-present. vendor is whether the entry's table comes from the vendor
// manifest. A vendor entry whose vendor key files could not be read gets
// Broken, and Check refuses it naming the file: a damaged keys.d never
// turns signed releases into unsigned ones.
func PolicyFor(kr *Keyring, entryMode string, entryKeys []string, vendor bool, defaultMode string, ext string) Policy {
	p := Policy{Keys: entryKeys}
	switch {
	case entryMode != "":
		p.Mode, p.Reason = entryMode, "manifest entry: signature = "+entryMode
	case vendor && kr.HasVendorKeys():
		p.Mode, p.Reason = ModeRequired, "vendor entry and the vendor ships a key"
	case len(entryKeys) > 0:
		p.Mode, p.Reason = ModeRequired, "manifest entry names its keys"
	case kr.scopedTo(ext):
		p.Mode, p.Reason = ModeRequired, "a key's .extensions file names it"
	case defaultMode != "":
		p.Mode, p.Reason = defaultMode, "sysextd.toml default"
	default:
		p.Mode, p.Reason = ModeIfPresent, "built-in default"
	}
	if vendor && kr != nil && len(kr.VendorBroken) > 0 && p.Mode != ModeNone {
		p.Broken = errors.Join(kr.VendorBroken...).Error()
	}
	return p
}

// scopedTo reports whether a key's .extensions file names ext itself
// ("*" is a key for everything, not a statement about ext).
func (kr *Keyring) scopedTo(ext string) bool {
	if kr == nil || ext == "" {
		return false
	}
	for _, k := range kr.Keys {
		for _, s := range k.Scope {
			if s == ext {
				return true
			}
		}
	}
	return false
}

// Release is what Check needs of a release, whatever its source: whether an
// asset exists, and the bytes of a small one. FetchAsset must bound what it
// reads (1 MiB is plenty for SHA256SUMS and its signatures).
type Release interface {
	HasAsset(name string) bool
	FetchAsset(ctx context.Context, name string) ([]byte, error)
}

// Verdict is the outcome of a check that passed.
type Verdict struct {
	// Signed is false when the release carries no signature and the policy
	// let it through, or when the policy is none.
	Signed bool `json:"signed"`
	// Method is minisign or openpgp.
	Method string `json:"method,omitempty"`
	// KeyID is the verifying key's id, KeyName its file stem.
	KeyID   string `json:"key_id,omitempty"`
	KeyName string `json:"key_name,omitempty"`
	// Comment is minisign's trusted comment, or the OpenPGP key's user id.
	Comment string `json:"comment,omitempty"`
	// SignedAt is the signature's own signed time (minisign's trusted
	// timestamp, OpenPGP's creation time); zero when it carries none.
	// Expires is when it stops being valid (minisign's trusted
	// expires=, OpenPGP's signature expiration); zero: never.
	SignedAt time.Time `json:"signed_at,omitzero"`
	Expires  time.Time `json:"expires,omitzero"`
}

// ExpiredError is a signature past its signed expiry: the source may be
// serving stale releases (a mirror frozen on an old signed release).
type ExpiredError struct {
	Expired time.Time
}

func (e *ExpiredError) Error() string {
	return "the signature expired on " + e.Expired.UTC().Format(time.RFC3339) +
		": the source may be stale (a mirror that stopped following the publisher), or the publisher has not re-signed"
}

// String is "KEYNAME (ID)" or "unsigned", as list and explain print it.
func (v Verdict) String() string {
	if !v.Signed {
		return "unsigned"
	}
	return v.KeyName + " (" + v.KeyID + ")"
}

// Error is a refused release. Expected lists the keys the policy allows
// ("NAME (ID)"), Found the key ids the release's signatures name.
type Error struct {
	Ext      string
	Asset    string
	Reason   string
	Expected []string
	Found    []string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s", e.Ext, e.Asset, e.Reason)
	if len(e.Found) > 0 {
		fmt.Fprintf(&b, "; signed by %s", strings.Join(e.Found, ", "))
	}
	if len(e.Expected) > 0 {
		fmt.Fprintf(&b, "; keys allowed: %s", strings.Join(e.Expected, ", "))
	} else {
		b.WriteString("; no key in keys.d is allowed to sign it")
	}
	return b.String()
}

// Allowed returns the keys pol allows for ext, and the names in pol.Keys
// that match no key.
func (kr *Keyring) Allowed(pol Policy, ext string) (keys []*Key, missing []string) {
	if kr == nil {
		return nil, pol.Keys
	}
	if len(pol.Keys) == 0 {
		for _, k := range kr.Keys {
			if k.scoped(ext) {
				keys = append(keys, k)
			}
		}
		return keys, nil
	}
	for _, ref := range pol.Keys {
		found := false
		for _, k := range kr.Keys {
			if k.matches(ref) {
				found = true
				keys = append(keys, k)
			}
		}
		if !found {
			missing = append(missing, ref)
		}
	}
	return keys, missing
}

// Sums is a release's SHA256SUMS as verified under a policy: Verdict
// says by whom; List is nil when the policy let an unsigned release
// through (nothing is known then).
type Sums struct {
	Verdict Verdict
	List    map[string]string
}

// Check verifies, for extension ext under policy pol, that asset (already
// downloaded, with sha256 sha256hex) is listed with that sum in the
// release's SHA256SUMS and that SHA256SUMS carries a signature by a key pol
// allows for ext. With mode none nothing is read. With if-present an
// unsigned release passes (Verdict.Signed false) but a signature that does
// not verify is refused like under required. A refusal is an *Error naming
// the extension, the keys allowed and the keys found; other errors come
// from fetching.
func Check(ctx context.Context, kr *Keyring, pol Policy, ext string, rel Release, asset string, sha256hex string) (Verdict, error) {
	sums, err := VerifySums(ctx, kr, pol, ext, rel, asset)
	if err != nil {
		return Verdict{}, err
	}
	if err := sums.Lists(ext, asset, sha256hex); err != nil {
		return Verdict{}, err
	}
	return sums.Verdict, nil
}

// Lists checks that the verified SHA256SUMS lists asset with sha256hex;
// with no verified list (an unsigned release the policy let through) it
// has nothing to say and returns nil.
func (s Sums) Lists(ext, asset, sha256hex string) error {
	if s.List == nil {
		return nil
	}
	want, ok := s.List[asset]
	if !ok {
		return &Error{Ext: ext, Asset: asset, Reason: fmt.Sprintf("not listed in the signed %s", SumsFile), Found: []string{s.Verdict.String()}}
	}
	if !strings.EqualFold(want, sha256hex) {
		return &Error{Ext: ext, Asset: asset, Reason: fmt.Sprintf("sha256 %s, but the signed %s says %s (tampered)", sha256hex, SumsFile, want), Found: []string{s.Verdict.String()}}
	}
	return nil
}

// VerifySums fetches the release's SHA256SUMS and its signatures and
// verifies them under pol for ext (asset names the refused thing in
// errors). See Check for the policy's meaning.
func VerifySums(ctx context.Context, kr *Keyring, pol Policy, ext string, rel Release, asset string) (Sums, error) {
	v, list, err := verifySums(ctx, kr, pol, ext, rel, asset)
	return Sums{Verdict: v, List: list}, err
}

func verifySums(ctx context.Context, kr *Keyring, pol Policy, ext string, rel Release, asset string) (Verdict, map[string]string, error) {
	if pol.Mode == ModeNone {
		return Verdict{}, nil, nil
	}
	if pol.Broken != "" {
		return Verdict{}, nil, &Error{Ext: ext, Asset: asset, Reason: "the vendor's signing keys cannot be loaded (" + pol.Broken + "): refusing rather than installing it unverified"}
	}
	if !ValidMode(pol.Mode) {
		return Verdict{}, nil, fmt.Errorf("%s: unknown signature policy %q", ext, pol.Mode)
	}
	allowed, missing := kr.Allowed(pol, ext)
	refuse := func(reason string, found []string) error {
		e := &Error{Ext: ext, Asset: asset, Reason: reason, Found: found}
		for _, k := range allowed {
			e.Expected = append(e.Expected, k.String())
		}
		for _, m := range missing {
			e.Expected = append(e.Expected, m+" (not in keys.d)")
		}
		return e
	}
	hasMini, hasPGP := rel.HasAsset(MinisignFile), rel.HasAsset(OpenPGPFile)
	if !hasMini && !hasPGP {
		if pol.Mode == ModeRequired {
			return Verdict{}, nil, refuse(fmt.Sprintf("release is not signed (no %s or %s) and signature = %q", MinisignFile, OpenPGPFile, pol.Mode), nil)
		}
		return Verdict{}, nil, nil
	}
	if !rel.HasAsset(SumsFile) {
		return Verdict{}, nil, refuse(fmt.Sprintf("release has a signature but no %s", SumsFile), nil)
	}
	sums, err := rel.FetchAsset(ctx, SumsFile)
	if err != nil {
		return Verdict{}, nil, fmt.Errorf("%s: fetching %s: %w", ext, SumsFile, err)
	}
	var reasons, found []string
	var verdict Verdict
	verified := false
	for _, s := range []struct {
		file   string
		has    bool
		verify func([]*Key, []byte, []byte) (Verdict, []string, error)
	}{
		{MinisignFile, hasMini, kr.verifyMinisign},
		{OpenPGPFile, hasPGP, kr.verifyOpenPGP},
	} {
		if !s.has {
			continue
		}
		sig, err := rel.FetchAsset(ctx, s.file)
		if err != nil {
			return Verdict{}, nil, fmt.Errorf("%s: fetching %s: %w", ext, s.file, err)
		}
		v, f, err := s.verify(allowed, sums, sig)
		found = append(found, f...)
		if err != nil {
			reasons = append(reasons, s.file+": "+err.Error())
			continue
		}
		verdict, verified = v, true
		break
	}
	if !verified {
		return Verdict{}, nil, refuse(strings.Join(reasons, "; "), found)
	}
	list, err := ParseSums(sums)
	if err != nil {
		return Verdict{}, nil, refuse(err.Error(), found)
	}
	if !verdict.Expires.IsZero() && !kr.now().Before(verdict.Expires) {
		return Verdict{}, nil, refuse((&ExpiredError{Expired: verdict.Expires}).Error(), found)
	}
	return verdict, list, nil
}
