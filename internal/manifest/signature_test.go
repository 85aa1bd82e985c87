package manifest

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSignatureKeys(t *testing.T) {
	data := "[a]\nurl = \"https://github.com/o/r\"\nkeys = [\"vendor-2026\", \"vendor-2027\"]\nsignature = \"required\"\n"
	entries, warnings, errs := Parse("f.toml", []byte(data))
	if len(errs)+len(warnings) != 0 {
		t.Fatalf("problems: %v %v", errs, warnings)
	}
	e := entries[0]
	if e.Signature != "required" || !slices.Equal(e.Keys, []string{"vendor-2026", "vendor-2027"}) {
		t.Errorf("entry = %+v", e)
	}

	_, _, errs = Parse("f.toml", []byte("[a]\nurl = \"https://github.com/o/r\"\nsignature = \"maybe\"\n"))
	if len(errs) != 1 || errs[0].Key != "a.signature" || errs[0].Line != 3 || !strings.Contains(errs[0].Message, `want required, if-present or none, got "maybe"`) {
		t.Errorf("bad signature: %v", errs)
	}
	_, _, errs = Parse("f.toml", []byte("[a]\nurl = \"https://github.com/o/r\"\nkeys = [\" \"]\n"))
	if len(errs) != 1 || errs[0].Key != "a.keys" {
		t.Errorf("empty key: %v", errs)
	}
}
