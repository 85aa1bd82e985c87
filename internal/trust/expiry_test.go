package trust

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// A signature carries its signed time, and one signed with an expiry is
// refused once past it, with a message that says the source may be stale:
// for minisign (expires= in the trusted comment) and OpenPGP (the
// signature expiration subpacket).
func TestSignedTimeAndExpiry(t *testing.T) {
	tr := newTestRoot(t)
	mini := tr.minisignKey(rootfs.VendorKeysDir, "mini", ext)
	pgp := NewOpenPGPSigner(tr.openpgpKey(rootfs.VendorKeysDir, "pgp", false, nil, ext))
	for _, tt := range []struct {
		name   string
		signer Signer
	}{{"minisign", mini}, {"openpgp", pgp}} {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Add(-2 * time.Second)
			rel := newRelease(t, WithExpiry(tt.signer, time.Hour))
			kr := tr.keyring()
			v, err := Check(t.Context(), kr, required, ext, rel, testAsset, sha(rel.assets[testAsset]))
			if err != nil {
				t.Fatal(err)
			}
			if v.SignedAt.Before(before) || v.SignedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("SignedAt = %v, want about now", v.SignedAt)
			}
			if d := v.Expires.Sub(v.SignedAt); d < time.Hour-time.Second || d > time.Hour+time.Second {
				t.Errorf("Expires - SignedAt = %v, want 1h", d)
			}
			kr.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
			_, err = Check(t.Context(), kr, required, ext, rel, testAsset, sha(rel.assets[testAsset]))
			var te *Error
			if !errors.As(err, &te) || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "stale") {
				t.Errorf("expired signature: %v, want a refusal saying the source may be stale", err)
			}
			// Without an expiry, the clock does not matter.
			plain := newRelease(t, tt.signer)
			if _, err := Check(t.Context(), kr, required, ext, plain, testAsset, sha(plain.assets[testAsset])); err != nil {
				t.Errorf("no expiry, clock moved: %v", err)
			}
		})
	}
}

func TestTrustedTimes(t *testing.T) {
	for _, tt := range []struct {
		comment       string
		signed, until int64
	}{
		{"timestamp:1700000000\tfile:SHA256SUMS\thashed", 1700000000, 0},
		{"timestamp:1700000000\tfile:SHA256SUMS\thashed\texpires=1700003600", 1700000000, 1700003600},
		{"timestamp:1700000000 expires=2023-11-14T23:13:20Z", 1700000000, 1700003600},
		{"timestamp:junk\texpires=", 0, 0},
		{"", 0, 0},
	} {
		s, e := trustedTimes(tt.comment)
		if got := unixOr0(s); got != tt.signed {
			t.Errorf("%q: signed %d, want %d", tt.comment, got, tt.signed)
		}
		if got := unixOr0(e); got != tt.until {
			t.Errorf("%q: expires %d, want %d", tt.comment, got, tt.until)
		}
	}
}

func unixOr0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
