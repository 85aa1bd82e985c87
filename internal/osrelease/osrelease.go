// Package osrelease reads and writes os-release(5) syntax exactly as
// systemd's env-file parser does (src/basic/env-file.c, checked against
// systemd v257; docs/extension-release.md lists every rule): the host's
// os-release, an image's extension-release file, the .manifest asset of a
// release and sysext.pl's leftover manifests all go through it.
//
// Load is systemd's load_env_file_pairs: it fails, as systemd does, when a
// key or value is not valid UTF-8. Parse is the lenient form for files that
// are ours to read but not systemd's to refuse (a .manifest, the host's
// os-release): such pairs are dropped.
package osrelease

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Character classes of systemd's env-file parser (string-util.h, escape.h).
const (
	whitespace      = " \t\n\r"
	newline         = "\n\r"
	comments        = "#;"
	shellNeedEscape = "\"\\`$"
)

// InvalidUTF8Error is Load's error when a key or value is not valid UTF-8 as
// systemd's utf8_is_valid() defines it. systemd then refuses the whole file.
type InvalidUTF8Error struct {
	Line int    // 1-based line where the assignment starts
	Key  string // the key, with invalid bytes escaped by %q
}

func (e *InvalidUTF8Error) Error() string {
	return fmt.Sprintf("line %d: invalid UTF-8 in %q (systemd refuses the whole file)", e.Line, e.Key)
}

// ErrNUL is Load's error for a file with a NUL byte: systemd's
// read_full_stream() refuses it (EBADMSG) rather than cut the file short.
var ErrNUL = errors.New("file contains a NUL byte (systemd refuses it)")

// Load parses b like systemd's load_env_file_pairs(): later assignments of a
// key win, lines without "=" and comment lines ("#" or ";" first) are
// skipped, keys are taken as written (systemd does not validate them; a
// UTF-8 byte order mark stays part of the first key). The errors are
// ErrNUL and *InvalidUTF8Error; systemd refuses the whole file for either.
func Load(b []byte) (map[string]string, error) {
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, ErrNUL
	}
	m := map[string]string{}
	err := scan(b, func(line int, key, value string) error {
		if !validUTF8(key) || !validUTF8(value) {
			return &InvalidUTF8Error{Line: line, Key: key}
		}
		m[key] = value
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Parse is Load without the failures: an assignment whose key or value is
// not valid UTF-8 is dropped and parsing goes on; a NUL byte ends the file.
func Parse(b []byte) map[string]string {
	m := map[string]string{}
	_ = scan(b, func(_ int, key, value string) error {
		if validUTF8(key) && validUTF8(value) {
			m[key] = value
		}
		return nil
	})
	return m
}

// scan is systemd's parse_env_file_internal() state machine. push gets the
// line where the assignment started.
func scan(b []byte, push func(line int, key, value string) error) error {
	const (
		preKey = iota
		inKey
		preValue
		inValue
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	const none = -1
	var key, value []byte
	state, line, keyLine := preKey, 1, 1
	lastKeyWS, lastValueWS := none, none
	in := func(set string, c byte) bool { return strings.IndexByte(set, c) >= 0 }
	emit := func(trimValue bool) error {
		k := key
		if lastKeyWS != none {
			k = k[:lastKeyWS]
		}
		v := value
		if trimValue && lastValueWS != none {
			v = v[:lastValueWS]
		}
		err := push(keyLine, string(k), string(v))
		key, value = key[:0], value[:0]
		return err
	}
	for _, c := range b {
		if c == 0 {
			break
		}
		if c == '\n' {
			line++
		}
		switch state {
		case preKey:
			switch {
			case in(comments, c):
				state = comment
			case !in(whitespace, c):
				state, lastKeyWS, keyLine = inKey, none, line
				key = append(key, c)
			}
		case inKey:
			switch {
			case in(newline, c):
				state, key = preKey, key[:0]
			case c == '=':
				state, lastValueWS = preValue, none
			default:
				if !in(whitespace, c) {
					lastKeyWS = none
				} else if lastKeyWS == none {
					lastKeyWS = len(key)
				}
				key = append(key, c)
			}
		case preValue:
			switch {
			case in(newline, c):
				state = preKey
				if err := emit(false); err != nil {
					return err
				}
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case !in(whitespace, c):
				state = inValue
				value = append(value, c)
			}
		case inValue:
			switch {
			case in(newline, c):
				state = preKey
				if err := emit(true); err != nil {
					return err
				}
			case c == '\\':
				state, lastValueWS = valueEscape, none
			default:
				if !in(whitespace, c) {
					lastValueWS = none
				} else if lastValueWS == none {
					lastValueWS = len(value)
				}
				value = append(value, c)
			}
		case valueEscape:
			state = inValue
			if !in(newline, c) { // an escaped newline is a continuation
				value = append(value, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				value = append(value, c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				value = append(value, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case in(shellNeedEscape, c):
				value = append(value, c)
			case c != '\n':
				value = append(value, '\\', c)
			}
		case comment:
			switch {
			case c == '\\':
				state = commentEscape
			case in(newline, c):
				state = preKey
			}
		case commentEscape:
			// Since v254 an escaped newline ends a comment all the same.
			if in(newline, c) {
				state = preKey
			} else {
				state = comment
			}
		}
	}
	switch state {
	case preValue, inValue, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape:
		return emit(state == inValue)
	}
	return nil
}

// validUTF8 is systemd's utf8_is_valid(): well-formed UTF-8 whose code
// points are not surrogates, not U+FDD0..U+FDEF and not U+xxFFFE/U+xxFFFF.
func validUTF8(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		if (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE {
			return false
		}
		i += size
	}
	return true
}

// Format writes m as KEY="VALUE" lines, sorted by key, such that Parse gives
// m back for every key matching [A-Za-z_][A-Za-z0-9_]* and every value
// without a NUL byte.
func Format(m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k)
		sb.WriteString(`="`)
		v := m[k]
		for i := 0; i < len(v); i++ {
			if strings.IndexByte(shellNeedEscape, v[i]) >= 0 {
				sb.WriteByte('\\')
			}
			sb.WriteByte(v[i])
		}
		sb.WriteString("\"\n")
	}
	return []byte(sb.String())
}

// ValidKey reports whether k is a conventional os-release key,
// [A-Za-z_][A-Za-z0-9_]*. systemd does not require it; Format only
// round-trips such keys.
func ValidKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
