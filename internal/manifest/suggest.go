package manifest

import (
	"reflect"
	"sort"
	"strings"
)

// Keys returns the keys an extension's table may have, from Entry's toml
// tags (so a field added to Entry, or a rule kind added to rules.Rules, is
// a known key at once), sorted.
func Keys() []string {
	var keys []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if tag != "" && tag != "-" {
				keys = append(keys, tag)
			}
		}
	}
	walk(reflect.TypeFor[Entry]())
	sort.Strings(keys)
	return keys
}
