package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/spamtagger/sysextd/internal/rules"
)

// decode turns a manifest's text into its tables. Unknown keys are
// warnings. A value of the wrong type (pci_id = "15ad") costs only its
// table: the file is decoded again table by table, and the problem carries
// the table's name in Entry. Only text that is not TOML at all, or a value
// outside any table, makes the whole file unusable (a Problem without Entry).
func decode(file string, data []byte, pos positions) (map[string]Entry, []Problem, []Problem) {
	raw, strict, err := decodeStrict(data)
	if err == nil {
		return raw, unknownKeys(file, strict, nil), nil
	}
	var derr *toml.DecodeError
	if !errors.As(err, &derr) {
		return nil, nil, []Problem{{File: file, Message: err.Error()}}
	}
	line, col := derr.Position()
	whole := []Problem{{File: file, Line: line, Column: col, Key: strings.Join(derr.Key(), "."), Message: derr.Error()}}
	var loose map[string]any
	if toml.Unmarshal(data, &loose) != nil {
		return nil, nil, whole // a syntax error: nothing can be trusted
	}
	names := make([]string, 0, len(loose))
	for n, v := range loose {
		if _, ok := v.(map[string]any); !ok {
			return nil, nil, whole // a bare key outside every table
		}
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]Entry{}
	var warnings, errs []Problem
	for _, n := range names {
		text, err := toml.Marshal(map[string]any{n: loose[n]})
		if err != nil {
			errs = append(errs, Problem{File: file, Line: pos.table(n), Key: n, Entry: n, Message: err.Error()})
			continue
		}
		one, strict, err := decodeStrict(text)
		if err != nil {
			p := Problem{File: file, Key: n, Entry: n, Message: err.Error()}
			if errors.As(err, &derr) {
				p.Message = derr.Error()
				if k := derr.Key(); len(k) > 0 {
					p.Key = strings.Join(k, ".")
					p.Line, p.Column = pos.key(n, k[len(k)-1])
				}
			}
			if p.Line == 0 {
				p.Line = pos.table(n)
			}
			// The first error of the whole file has the exact column.
			if p.Key == whole[0].Key {
				p.Line, p.Column = whole[0].Line, whole[0].Column
			}
			errs = append(errs, p)
			continue
		}
		warnings = append(warnings, unknownKeys(file, strict, &pos)...)
		out[n] = one[n]
	}
	return out, warnings, errs
}

// decodeStrict decodes data into tables, reporting unknown keys apart from
// real errors.
func decodeStrict(data []byte) (map[string]Entry, *toml.StrictMissingError, error) {
	var raw map[string]Entry
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&raw)
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		return raw, strict, nil
	}
	return raw, nil, err
}

// unknownKeys turns go-toml's unknown-key errors into warnings with the
// closest valid key. With pos set, positions are looked up in the original
// text (the errors came from a table decoded on its own).
func unknownKeys(file string, strict *toml.StrictMissingError, pos *positions) []Problem {
	if strict == nil {
		return nil
	}
	var ws []Problem
	for _, e := range strict.Errors {
		line, col := e.Position()
		key := e.Key()
		if pos != nil && len(key) > 0 {
			line, col = pos.key(key[0], key[len(key)-1])
		}
		msg := "unknown key (ignored)"
		if len(key) == 2 {
			if s := rules.Closest(key[1], Keys()); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
		}
		ws = append(ws, Problem{File: file, Line: line, Column: col, Key: strings.Join(key, "."), Message: msg, Warning: true})
	}
	return ws
}
