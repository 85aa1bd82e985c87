package rules

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// A registered kind is complete: every part the registry iterates is
// there, its man page entry names its key, and its key is a TOML key of
// Rules and its checks' Rule.
func TestEveryKindIsComplete(t *testing.T) {
	tomlKeys := map[string]bool{}
	rt := reflect.TypeFor[Rules]()
	for i := range rt.NumField() {
		part := rt.Field(i).Type
		for j := range part.NumField() {
			k, _, _ := strings.Cut(part.Field(j).Tag.Get("toml"), ",")
			tomlKeys[k] = true
		}
	}
	seen := map[string]bool{}
	for _, k := range Kinds {
		if seen[k.Key] {
			t.Errorf("%s registered twice", k.Key)
		}
		seen[k.Key] = true
		if k.values == nil || k.validate == nil || k.gather == nil || k.match == nil || k.show == nil {
			t.Errorf("%s lacks a part", k.Key)
		}
		if !strings.HasPrefix(k.Man, `\fB`+k.Key+`\fP`) || !strings.HasSuffix(k.Man, "\n") {
			t.Errorf("%s: man entry %q does not start with its key or end a line", k.Key, k.Man)
		}
		if !tomlKeys[k.Key] {
			t.Errorf("%s is not a TOML key of Rules (%v)", k.Key, tomlKeys)
		}
		if c := k.match("x", &Facts{}); c.Rule != k.Key {
			t.Errorf("%s: check names rule %q", k.Key, c.Rule)
		}
		if Lookup(k.Key) != k {
			t.Errorf("Lookup(%s) is not the kind", k.Key)
		}
	}
	if len(tomlKeys) != len(Kinds) {
		t.Errorf("Rules has %d keys, Kinds %d", len(tomlKeys), len(Kinds))
	}
}

// The facts JSON keeps its keys and order: a kind's facts are embedded,
// not nested.
func TestFactsJSONIsFlat(t *testing.T) {
	data, err := json.Marshal(Facts{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pci":null,"dmi":{"vendor":"","product":""},"device_tree":null,"virtualization":"","files":null}`
	if string(data) != want {
		t.Errorf("got %s, want %s", data, want)
	}
}

func TestFactLinesOrder(t *testing.T) {
	f := &Facts{}
	f.Files = map[string]bool{"/b": false, "/a": true}
	got := FactLines(f, "note")
	want := []string{"virtualization\t-  (note)", "dmi\t-", "device_tree\t-", "pci\t-", "file\t/a\texists", "file\t/b\tmissing"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
