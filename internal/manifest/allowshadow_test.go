package manifest

import "testing"

func TestAllowShadow(t *testing.T) {
	entries, warnings, errs := Parse("f.toml", []byte("[a]\nurl = \"https://github.com/o/a\"\nallow_shadow = false\n[b]\nurl = \"https://github.com/o/b\"\n"))
	if len(errs)+len(warnings) != 0 || len(entries) != 2 {
		t.Fatalf("Parse = %v, warnings %v, errs %v; want two entries and no problem", entries, warnings, errs)
	}
	if entries[0].ShadowAllowed() || !entries[1].ShadowAllowed() {
		t.Errorf("ShadowAllowed: a = %v (set false), b = %v (default); want false, true", entries[0].ShadowAllowed(), entries[1].ShadowAllowed())
	}
	_, _, errs = Parse("f.toml", []byte("[a]\nurl = \"https://github.com/o/a\"\nallow_shadow = \"no\"\n"))
	if len(errs) != 1 || errs[0].Line != 3 {
		t.Errorf("allow_shadow = \"no\": errs = %v; want one error at line 3", errs)
	}
}
