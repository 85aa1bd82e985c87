package source

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
)

// CopyBufSize keeps memory flat however large the asset.
const CopyBufSize = 256 << 10

// VerifiedCopy copies at most maxSize bytes of body to w and checks them
// against a's published size and digest (sha256 or sha512). The result's
// SHA256 is always the sha256 of the bytes. Errors: ErrTooLarge,
// *SizeMismatchError, *DigestMismatchError, and read errors passed through
// Classify.
func VerifiedCopy(w io.Writer, body io.Reader, a Asset, maxSize int64) (*Downloaded, error) {
	limit := maxSize
	if a.Size > 0 && a.Size < limit {
		limit = a.Size
	}
	algo, want, err := splitDigest(a.Digest)
	if err != nil {
		return nil, fmt.Errorf("asset %s: %w", a.Name, err)
	}
	h256 := sha256.New()
	writers := []io.Writer{w, h256}
	var hp hash.Hash
	if algo == "sha512" {
		hp = sha512.New()
		writers = append(writers, hp)
	}
	n, err := io.CopyBuffer(io.MultiWriter(writers...), io.LimitReader(body, limit+1), make([]byte, copyBufFor(limit)))
	if err != nil {
		return nil, Classify(err)
	}
	switch {
	case n > maxSize:
		return nil, fmt.Errorf("more than %d bytes: %w", maxSize, ErrTooLarge)
	case a.Size > 0 && n != a.Size:
		return nil, &SizeMismatchError{Asset: a.Name, Want: a.Size, Got: n}
	}
	got256 := "sha256:" + hex.EncodeToString(h256.Sum(nil))
	d := &Downloaded{SHA256: got256, Size: n, Unverified: algo == ""}
	switch algo {
	case "sha256":
		if !strings.EqualFold(want, got256[len("sha256:"):]) {
			return nil, &DigestMismatchError{Asset: a.Name, Want: a.Digest, Got: got256}
		}
	case "sha512":
		got := hex.EncodeToString(hp.Sum(nil))
		if !strings.EqualFold(want, got) {
			return nil, &DigestMismatchError{Asset: a.Name, Want: a.Digest, Got: "sha512:" + got}
		}
	}
	return d, nil
}

// copyBufFor sizes the copy buffer for at most limit bytes: a small
// asset (a .manifest of a few hundred bytes) gets a small buffer, since a
// cold list fetches a hundred of them at once and 256 KiB each was most of
// its peak memory.
func copyBufFor(limit int64) int {
	const minBuf = 4 << 10
	return int(min(max(limit+1, minBuf), CopyBufSize))
}

// splitDigest reads "sha256:<hex>" or "sha512:<hex>"; "" is no digest.
func splitDigest(d string) (algo, hexsum string, err error) {
	if d == "" {
		return "", "", nil
	}
	algo, hexsum, ok := strings.Cut(d, ":")
	algo = strings.ToLower(algo)
	want := map[string]int{"sha256": 64, "sha512": 128}[algo]
	if !ok || want == 0 {
		return "", "", fmt.Errorf("unsupported digest %q (want sha256: or sha512:)", d)
	}
	if len(hexsum) != want {
		return "", "", fmt.Errorf("malformed %s digest %q", algo, d)
	}
	if _, err := hex.DecodeString(hexsum); err != nil {
		return "", "", fmt.Errorf("malformed %s digest %q", algo, d)
	}
	return algo, hexsum, nil
}

// DigestKey is a short stable key for a's content: the published digest's
// hex, else "size-N".
func DigestKey(a Asset) string {
	if _, h, err := splitDigest(a.Digest); err == nil && h != "" {
		return strings.ToLower(h)
	}
	return fmt.Sprintf("size-%d", a.Size)
}

// Throttle wraps body so that reading fails with ErrTooSlow when fewer
// than minRate*window bytes arrived in any window after the first, so a
// server that drips bytes cannot hold a download (and the lock) for long.
// The check runs on reads; a body that sends nothing at all is the stall
// watchdog's to end.
func Throttle(body io.Reader, minRate int64, window time.Duration) io.Reader {
	if minRate <= 0 || window <= 0 {
		return body
	}
	return &throttle{r: body, min: int64(float64(minRate) * window.Seconds()), window: window, start: time.Now()}
}

type throttle struct {
	r      io.Reader
	min    int64
	window time.Duration
	start  time.Time
	n      int64
}

func (t *throttle) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	if el := time.Since(t.start); el >= t.window {
		if t.n < t.min {
			return n, fmt.Errorf("%w: %d bytes in %s, want at least %d", ErrTooSlow, t.n, el.Round(time.Second), t.min)
		}
		t.start, t.n = time.Now(), 0
	}
	return n, err
}
