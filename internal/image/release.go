package image

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxReleaseLine bounds one line of an os-release style file.
const maxReleaseLine = 64 << 10

// ParseRelease reads an os-release(5) style file (os-release,
// extension-release): KEY=VALUE lines, values optionally in single or double
// quotes, shell-style backslash escapes, "#" comments and blank lines. Later
// assignments of the same key win, as when the file is sourced by a shell.
// Malformed lines (no "=", an invalid key, an unterminated quote) are errors
// naming the line number.
func ParseRelease(r io.Reader) (map[string]string, error) {
	fields := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxReleaseLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("parsing release line %d: missing '=' in %q", n, line)
		}
		key = strings.TrimSpace(key)
		if !validKey(key) {
			return nil, fmt.Errorf("parsing release line %d: invalid key %q", n, key)
		}
		val, err := unquote(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("parsing release line %d (%s): %w", n, key, err)
		}
		fields[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing release line %d: %w", n+1, err)
	}
	return fields, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote evaluates a shell word without expansions: unquoted text with
// backslash escapes, '...' literally, "..." with \" \\ \$ \` escapes.
// Trailing blanks of an unquoted value are dropped, as systemd does.
func unquote(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", fmt.Errorf("unterminated single quote in %q", s)
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
			if !closed {
				return "", fmt.Errorf("unterminated double quote in %q", s)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
