package trust

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// SumsFile is the checksum list every signed release carries, and the
// names of its detached signatures.
const (
	SumsFile     = "SHA256SUMS"
	MinisignFile = SumsFile + ".minisig"
	OpenPGPFile  = SumsFile + ".gpg"
)

// maxSums bounds the SHA256SUMS a release may carry (and ParseSums reads).
const maxSums = 1 << 20

// ParseSums reads a sha256sum(1) listing: one "HEX  NAME" (or "HEX *NAME")
// line per file. Every line must be well formed; a name listed twice with
// different sums is an error. Names are returned without the binary marker
// and without a leading "./"; other paths are refused. Errors name the line.
func ParseSums(data []byte) (map[string]string, error) {
	if len(data) > maxSums {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", SumsFile, len(data), maxSums)
	}
	sums := map[string]string{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		l := strings.TrimSuffix(string(line), "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		if strings.HasPrefix(l, "\\") {
			return nil, fmt.Errorf("%s:%d: escaped file names are not supported", SumsFile, n)
		}
		if len(l) < 64+2 || l[64] != ' ' || (l[65] != ' ' && l[65] != '*') {
			return nil, fmt.Errorf("%s:%d: want \"SHA256  NAME\"", SumsFile, n)
		}
		sum := strings.ToLower(l[:64])
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("%s:%d: sha256 is not hex", SumsFile, n)
		}
		name := strings.TrimPrefix(l[66:], "./") // sha256sum ./*
		if name == "" || strings.ContainsFunc(name, badNameRune) || name == "." || name == ".." {
			return nil, fmt.Errorf("%s:%d: invalid file name %q", SumsFile, n, name)
		}
		if prev, ok := sums[name]; ok && prev != sum {
			return nil, fmt.Errorf("%s:%d: %s listed twice with different sums", SumsFile, n, name)
		}
		sums[name] = sum
	}
	return sums, nil
}

// badNameRune refuses a path separator and control characters in a listed
// name: a "\r" or NUL in a release asset name is never honest, and a name
// that carries one would not survive FormatSums and a second parse.
func badNameRune(r rune) bool {
	return r == '/' || r < 0x20 || r == 0x7f
}

// FormatSums writes sums the way sha256sum does, sorted by name.
func FormatSums(sums map[string]string) []byte {
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return b.Bytes()
}
