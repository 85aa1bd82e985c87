// Package osrelease reads and writes os-release(5) syntax leniently: the
// host's os-release, the .manifest asset of a release and sysext.pl's
// leftover manifests. Lines it cannot read are skipped, as a shell sourcing
// the file would mostly do. (internal/image parses an image's own
// extension-release strictly: a malformed image is refused.)
package osrelease

import (
	"sort"
	"strings"
)

// Parse reads the KEY=VALUE lines of an extension-release (os-release
// syntax) file, as published in the .manifest asset. Values in double quotes
// have the shell escapes \\ \" \$ \` undone, values in single quotes are taken
// literally, unquoted values are trimmed. Blank lines, comments and lines
// that are not KEY=VALUE with KEY matching [A-Za-z_][A-Za-z0-9_]* are skipped.
// A later duplicate key wins.
func Parse(b []byte) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !validKey(k) {
			continue
		}
		m[k] = unquote(v)
	}
	return m
}

// Format writes m as KEY="VALUE" lines, sorted by key, such that
// Parse gives m back for any value without a newline.
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
			switch v[i] {
			case '\\', '"', '$', '`':
				sb.WriteByte('\\')
			}
			sb.WriteByte(v[i])
		}
		sb.WriteString("\"\n")
	}
	return []byte(sb.String())
}

func validKey(k string) bool {
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

func unquote(v string) string {
	switch {
	case strings.HasPrefix(v, `'`):
		v = v[1:]
		if i := strings.IndexByte(v, '\''); i >= 0 {
			v = v[:i]
		}
		return v
	case strings.HasPrefix(v, `"`):
		var sb strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '"':
				return sb.String()
			case c == '\\' && i+1 < len(v) && strings.IndexByte("\\\"$`", v[i+1]) >= 0:
				i++
				sb.WriteByte(v[i])
			default:
				sb.WriteByte(c)
			}
		}
		return sb.String() // unterminated: the rest of the line
	default:
		return v
	}
}
