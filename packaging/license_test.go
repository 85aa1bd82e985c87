package packaging

import (
	"os"
	"strings"
	"testing"
)

// The project is GPL-3.0-or-later, like sysext.pl which it replaces; the
// package must say so (it said UNDECLARED).
func TestLicenseDeclared(t *testing.T) {
	text, err := os.ReadFile("../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "GNU GENERAL PUBLIC LICENSE") || !strings.Contains(string(text), "Version 3, 29 June 2007") {
		t.Errorf("LICENSE is not the GPL version 3 text")
	}
	script, err := os.ReadFile("build-deb.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`DEB_LICENSE=${DEB_LICENSE:-"GPL-3.0-or-later"}`, "License: GPL-3.0+", "/usr/share/common-licenses/GPL-3"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("build-deb.sh lacks %q", want)
		}
	}
	if strings.Contains(string(script), "UNDECLARED") {
		t.Errorf("build-deb.sh still declares no licence")
	}
	nfpm, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(nfpm), "license: ${DEB_LICENSE}") || !strings.Contains(string(nfpm), "man/*.5.gz") {
		t.Errorf("nfpm.yaml does not declare the licence or ship section-5 pages")
	}
}
