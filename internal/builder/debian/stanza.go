// Package debian reads what a Debian archive and a Debian root publish and
// turns it into a set of packages to unpack: deb822 stanzas (Packages,
// Release, dpkg status), signed InRelease files, dependency resolution as apt
// does it by default, and verified .deb downloads and unpacking without root.
//
// It uses pault.ag/go/debian for versions, dependency relations and .deb
// reading; parsing of the indices is done here so that errors name the file
// and line.
package debian

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Stanza is one deb822 paragraph. Keys keep their spelling; look them up
// with Get, which is case-insensitive as deb822 field names are.
type Stanza struct {
	Fields map[string]string
	Line   int // line number of the first field, for error messages
}

// Get returns the value of field key ("" when absent).
func (s Stanza) Get(key string) string {
	if v, ok := s.Fields[key]; ok {
		return v
	}
	for k, v := range s.Fields {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// maxLine bounds one line of an index (long Description fields are split
// over continuation lines, so 1 MiB is generous).
const maxLine = 1 << 20

// ParseStanzas reads every deb822 paragraph of r. name is used in error
// messages ("name:line: ..."). Comment lines (#) are skipped; continuation
// lines are joined with "\n" as they appear (without the leading space).
func ParseStanzas(r io.Reader, name string) ([]Stanza, error) {
	var out []Stanza
	err := EachStanza(r, name, func(s Stanza) error {
		out = append(out, s)
		return nil
	})
	return out, err
}

// EachStanza calls fn for every paragraph of r in order and stops at the
// first error fn returns.
func EachStanza(r io.Reader, name string, fn func(Stanza) error) error {
	return eachStanza(r, name, nil, fn)
}

// eachStanza is EachStanza keeping only the fields keep returns true for
// (all when keep is nil): an index has many large fields nobody reads.
func eachStanza(r io.Reader, name string, keep map[string]bool, fn func(Stanza) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	cur := Stanza{}
	var last string
	skipping := false
	lineNo := 0
	flush := func() error {
		if cur.Fields == nil {
			return nil
		}
		s := cur
		cur, last, skipping = Stanza{}, "", false
		return fn(s)
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return err
			}
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if skipping {
				continue
			}
			if last == "" {
				return fmt.Errorf("%s:%d: continuation line without a field", name, lineNo)
			}
			cont := strings.TrimSpace(line)
			if cont == "." {
				cont = ""
			}
			if v := cur.Fields[last]; v == "" {
				cur.Fields[last] = cont
			} else {
				cur.Fields[last] = v + "\n" + cont
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			k = strings.TrimSpace(k)
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return fmt.Errorf("%s:%d: %q is not a \"Field: value\" line", name, lineNo, truncate(line, 60))
			}
			if cur.Fields == nil {
				cur.Fields = map[string]string{}
				cur.Line = lineNo
			}
			if keep != nil && !keep[k] {
				skipping, last = true, ""
				continue
			}
			skipping = false
			if _, dup := cur.Fields[k]; dup {
				return fmt.Errorf("%s:%d: field %s repeated in one paragraph", name, lineNo, k)
			}
			cur.Fields[k] = strings.TrimSpace(v)
			last = k
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s near line %d: %w", name, lineNo, err)
	}
	return flush()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
