package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// One bad value leaves out its entry only: the rest of its file loads, the
// entry's problem is kept, and Load still reports an error (so mutating
// verbs refuse).
func TestBadEntryLeavesOutOnlyItself(t *testing.T) {
	root := rootfs.New(t.TempDir())
	writeFile(t, root, rootfs.VendorManifest, vendor)
	writeFile(t, root, rootfs.LocalManifest, `[mine]
url = "https://github.com/me/mine"
pci_id = ["zzzz"]

[hello]
url = "https://github.com/me/sysext-hello"

[open-vm-tools]
url = "https://github.com/me/ovt"
update = "restart"
`)
	set, _, err := Load(root)
	var merr *Error
	if !errors.As(err, &merr) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if set.Get("mine") != nil {
		t.Errorf("mine loaded despite pci_id zzzz")
	}
	if got := set.Get("hello"); got == nil || got.URL != "https://github.com/me/sysext-hello" {
		t.Errorf("hello = %+v, want the local file's good entry", got)
	}
	if set.Get("open-vm-tools") != nil {
		t.Errorf("open-vm-tools: the vendor table is used although the local one that replaces it is broken")
	}
	if set.Get("qemu-guest-agent") == nil {
		t.Errorf("vendor entries lost")
	}
	ps := set.Invalid["mine"]
	if len(ps) != 1 || ps[0].Line != 3 || ps[0].Key != "mine.pci_id" || !strings.Contains(ps[0].Message, "zzzz") {
		t.Errorf("Invalid[mine] = %v, want one pci_id problem at line 3", ps)
	}
	if len(set.Invalid["open-vm-tools"]) != 1 {
		t.Errorf("Invalid[open-vm-tools] = %v, want the update problem", set.Invalid["open-vm-tools"])
	}
	// Several problems: one per line, each naming file:line.
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], rootfs.LocalManifest+":3:") || !strings.Contains(lines[2], rootfs.LocalManifest+":10:") {
		t.Errorf("error = %q, want a heading and one line per problem", err)
	}
}

func TestMissingURLIsPerEntry(t *testing.T) {
	root := rootfs.New(t.TempDir())
	writeFile(t, root, rootfs.VendorManifest, "[a]\nvirt_env = [\"kvm\"]\n\n[b]\nurl = \"https://github.com/o/b\"\n")
	set, _, err := Load(root)
	if err == nil || set.Get("b") == nil || set.Get("a") != nil || len(set.Invalid["a"]) != 1 {
		t.Errorf("Load = %v, %v, invalid %v; want a left out for its missing url, b kept", set.Names(), err, set.Invalid)
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"unknown key", "[a]\nurl = \"https://github.com/o/r\"\npci_ids = [\"15ad\"]\n", `unknown key (ignored); did you mean "pci_id"?`},
		{"unknown key far from all", "[a]\nurl = \"https://github.com/o/r\"\ncolour = \"red\"\n", "unknown key (ignored)"},
		{"virt_env typo", "[a]\nurl = \"https://github.com/o/r\"\nvirt_env = [\"vmwar\"]\n", `did you mean "vmware"?`},
		{"virt_env case", "[a]\nurl = \"https://github.com/o/r\"\nvirt_env = [\"KVM\"]\n", `did you mean "kvm"?`},
		{"virt_env unknown", "[a]\nurl = \"https://github.com/o/r\"\nvirt_env = [\"hypervisor-x\"]\n", "never matches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, warnings, errs := Parse("f.toml", []byte(tt.data))
			if len(errs) != 0 || len(entries) != 1 {
				t.Fatalf("errs = %v, entries = %d; want a usable entry", errs, len(entries))
			}
			if len(warnings) != 1 || !warnings[0].Warning || warnings[0].Line != 3 || !strings.Contains(warnings[0].Message, tt.want) {
				t.Fatalf("warnings = %v, want one at line 3 containing %q", warnings, tt.want)
			}
			if tt.name == "unknown key far from all" && strings.Contains(warnings[0].Message, "did you mean") {
				t.Errorf("suggestion for a key near nothing: %q", warnings[0].Message)
			}
		})
	}
}

func TestKeysFollowEntry(t *testing.T) {
	keys := strings.Join(Keys(), " ")
	for _, k := range []string{"url", "pci_id", "virt_env", "enabled", "asset"} {
		if !strings.Contains(" "+keys+" ", " "+k+" ") {
			t.Errorf("Keys() = %s, lacks %s", keys, k)
		}
	}
}

// A value of the wrong type costs only its table too; text that is not
// TOML still costs the whole file.
func TestTypeErrorLeavesOutOnlyItsTable(t *testing.T) {
	data := "[a]\nurl = \"https://github.com/o/a\"\npci_id = \"15ad\"\n\n[b]\nurl = \"https://github.com/o/b\"\ncolour = 1\n"
	entries, warnings, errs := Parse("f.toml", []byte(data))
	if len(entries) != 1 || entries[0].Name != "b" {
		t.Errorf("entries = %v, want b only", entries)
	}
	if len(errs) != 1 || errs[0].Entry != "a" || errs[0].Key != "a.pci_id" || errs[0].Line != 3 || errs[0].Column != 10 {
		t.Errorf("errs = %+v, want one for a.pci_id at 3:10", errs)
	}
	if len(warnings) != 1 || warnings[0].Key != "b.colour" || warnings[0].Line != 7 {
		t.Errorf("warnings = %+v, want b.colour at line 7", warnings)
	}
	for name, bad := range map[string]string{
		"syntax":        "[a]\nurl = \"https://github.com/o/a\n\n[b]\nurl = \"https://github.com/o/b\"\n",
		"key outside":   "url = 1\n[b]\nurl = \"https://github.com/o/b\"\npci_id = 3\n",
		"duplicate key": "[b]\nurl = \"https://github.com/o/b\"\nurl = \"https://github.com/o/c\"\n",
	} {
		entries, _, errs := Parse("f.toml", []byte(bad))
		if len(entries) != 0 || len(errs) == 0 || errs[0].Entry != "" {
			t.Errorf("%s: entries %d, errs %+v; want the whole file refused", name, len(entries), errs)
		}
	}
}
