package manifest

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
)

// positions locates table headers and keys in a manifest's text, so that
// problems found after decoding can still name a line and column.
type positions struct {
	tables map[string]int
	keys   map[string][2]int // "table\x00key" -> line, column
}

var (
	headerRE = regexp.MustCompile(`^\s*\[\s*("?)([^"\]]+)("?)\s*\]`)
	keyRE    = regexp.MustCompile(`^(\s*)([A-Za-z0-9_-]+)\s*=`)
)

func indexPositions(data []byte) positions {
	p := positions{tables: map[string]int{}, keys: map[string][2]int{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	table := ""
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if m := headerRE.FindStringSubmatch(text); m != nil {
			table = strings.TrimSpace(m[2])
			if _, ok := p.tables[table]; !ok {
				p.tables[table] = line
			}
			continue
		}
		if m := keyRE.FindStringSubmatch(text); m != nil && table != "" {
			k := table + "\x00" + m[2]
			if _, ok := p.keys[k]; !ok {
				p.keys[k] = [2]int{line, len(m[1]) + 1}
			}
		}
	}
	return p
}

func (p positions) table(name string) int { return p.tables[name] }

// key returns the line and column of key in table, falling back to the
// table header.
func (p positions) key(table, key string) (int, int) {
	if lc, ok := p.keys[table+"\x00"+key]; ok {
		return lc[0], lc[1]
	}
	return p.tables[table], 1
}
