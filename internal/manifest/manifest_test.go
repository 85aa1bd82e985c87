package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

func writeFile(t *testing.T, root rootfs.Root, p, content string) {
	t.Helper()
	full := root.Path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const vendor = `[open-vm-tools]
url = "https://github.com/SpamTagger/sysext-open-vm-tools"
virt_env = [ "vmware" ]
pci_id = [ "15ad:0405" ]
conflicts = [ "qemu-guest-agent" ]
update = "service: open-vm-tools"

[qemu-guest-agent]
url = "https://github.com/SpamTagger/sysext-qemu-guest-agent.git"
virt_env = [ "kvm", "qemu" ]

[hello]
url = "https://github.com/SpamTagger/sysext-template/"
`

func TestLoadMerge(t *testing.T) {
	root := rootfs.New(t.TempDir())
	writeFile(t, root, rootfs.VendorManifest, vendor)
	writeFile(t, root, rootfs.LocalManifest, `[hello]
url = "https://github.com/me/sysext-hello"
if_file = "/var/spamtagger/hello.flag"

[open-vm-tools]
enabled = false
`)
	writeFile(t, root, rootfs.DropinDir+"/20-b.toml", "[mine]\nurl = \"https://github.com/me/b\"\n")
	writeFile(t, root, rootfs.DropinDir+"/10-a.toml", "[mine]\nurl = \"https://github.com/me/a\"\n")

	set, warnings, err := Load(root)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %v, want none", warnings)
	}
	if got, want := set.Names(), []string{"hello", "mine", "open-vm-tools", "qemu-guest-agent"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names = %v, want %v", got, want)
	}
	hello := set.Get("hello")
	if hello.URL != "https://github.com/me/sysext-hello" || !hello.Local || hello.Source != rootfs.LocalManifest {
		t.Errorf("hello = %+v, want the local table", hello)
	}
	if got := set.Get("mine").URL; got != "https://github.com/me/b" {
		t.Errorf("mine url = %q, want the later drop-in", got)
	}
	ovt := set.Get("open-vm-tools")
	if ovt.AutoEnabled() || ovt.URL == "" || len(ovt.VirtEnv) != 1 {
		t.Errorf("open-vm-tools = %+v, want vendor table kept with enabled=false", ovt)
	}
	if got, want := set.Conflicting("qemu-guest-agent"), []string{"open-vm-tools"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Conflicting = %v, want %v (declared on the other side)", got, want)
	}
	if got := set.Get("qemu-guest-agent").Image(); got != "sysext-qemu-guest-agent" {
		t.Errorf("Image = %q", got)
	}
}

func TestLoadBrokenLocalKeepsVendor(t *testing.T) {
	root := rootfs.New(t.TempDir())
	writeFile(t, root, rootfs.VendorManifest, vendor)
	writeFile(t, root, rootfs.LocalManifest, "[mine]\nurl = \"https://github.com/me/x\"\nvirt_env = [ \"kvm\"\n")
	set, _, err := Load(root)
	var merr *Error
	if !errors.As(err, &merr) {
		t.Fatalf("err = %v, want *Error", err)
	}
	p := merr.Problems[0]
	if p.File != rootfs.LocalManifest || p.Line != 3 {
		t.Errorf("problem = %+v, want file %s line 3", p, rootfs.LocalManifest)
	}
	if !strings.Contains(err.Error(), rootfs.LocalManifest+":3") {
		t.Errorf("message %q does not name file:3", err)
	}
	if set.Get("open-vm-tools") == nil || set.Get("mine") != nil {
		t.Errorf("entries = %v, want vendor entries only", set.Names())
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name, data        string
		wantLine, wantCol int
		wantKey, wantMsg  string
		warning           bool
	}{
		{"type error", "[a]\nurl = \"https://github.com/o/r\"\npci_id = \"15ad\"\n", 3, 10, "a.pci_id", "", false},
		{"bad pci", "[a]\nurl = \"https://github.com/o/r\"\npci_id = [\"15ad:zz\"]\n", 3, 1, "a.pci_id", "not hex", false},
		{"bad url", "[a]\n  url = \"http://example.com/x\"\n", 2, 3, "a.url", "use https", false},
		{"bad mirror", "[a]\nurl = \"https://github.com/o/r\"\nmirrors = [\"ftp://m/x\"]\n", 3, 1, "a.mirrors", "unsupported scheme", false},
		{"bad update", "[a]\nurl = \"https://github.com/o/r\"\nupdate = \"restart\"\n", 3, 1, "a.update", "unknown update action", false},
		{"relative if_file", "[a]\nurl = \"https://github.com/o/r\"\nif_file = \"x\"\n", 3, 1, "a.if_file", "absolute", false},
		{"unknown key", "[a]\nurl = \"https://github.com/o/r\"\ncolour = \"red\"\n", 3, 1, "a.colour", "unknown key", true},
		{"syntax", "[a]\nurl = \"https://github.com/o/r\n", 2, 0, "", "new lines", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, errs := Parse("f.toml", []byte(tt.data))
			ps := errs
			if tt.warning {
				ps = warnings
				if len(errs) != 0 {
					t.Fatalf("errs = %v, want none", errs)
				}
			}
			if len(ps) != 1 {
				t.Fatalf("problems = %v, want exactly one", ps)
			}
			p := ps[0]
			if p.Line != tt.wantLine || (tt.wantCol != 0 && p.Column != tt.wantCol) {
				t.Errorf("position = %d:%d, want %d:%d (%v)", p.Line, p.Column, tt.wantLine, tt.wantCol, p)
			}
			if tt.wantKey != "" && p.Key != tt.wantKey {
				t.Errorf("key = %q, want %q", p.Key, tt.wantKey)
			}
			if !strings.Contains(p.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", p.Message, tt.wantMsg)
			}
			if p.Warning != tt.warning {
				t.Errorf("warning = %v, want %v", p.Warning, tt.warning)
			}
		})
	}
}

func TestParseAction(t *testing.T) {
	tests := []struct {
		in      string
		want    Action
		wantErr bool
	}{
		{"", Action{Kind: ActionNone}, false},
		{"None", Action{Kind: ActionNone}, false},
		{"reboot", Action{Kind: ActionReboot}, false},
		{"service: open-vm-tools", Action{Kind: ActionService, Units: []string{"open-vm-tools.service"}}, false},
		{"service:a, b.service ,", Action{Kind: ActionService, Units: []string{"a.service", "b.service"}}, false},
		{"service:a, b.socket", Action{}, true},
		{"service: ssh.service, poweroff.target", Action{}, true},
		{"service: reboot.target", Action{}, true},
		{"service: .service", Action{}, true},
		{"service:", Action{}, true},
		{"restart: x", Action{}, true},
		{"service: a b", Action{}, true},
	}
	for _, tt := range tests {
		got, err := ParseAction(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAction(%q) = %+v, %v; want %+v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(vendor))
	f.Add([]byte("[a]\nurl = 1\n"))
	f.Add([]byte("[a.b]\nx=[[1]]\n"))
	f.Add([]byte("[a]\nurl = \"https://github.com/o/a\"\npci_id = \"15ad\"\n[b]\nurl = \"https://github.com/o/b\"\nvirt_env = [\"vmwar\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, warnings, errs := Parse("fuzz.toml", data)
		for _, p := range append(warnings, errs...) {
			if p.File != "fuzz.toml" || p.Message == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
		}
		bad := map[string]bool{}
		for _, p := range errs {
			bad[p.Entry] = true
		}
		if bad[""] && len(entries) > 0 {
			t.Fatalf("the file is unusable (%v) but %d entries came back", errs, len(entries))
		}
		for _, e := range entries {
			if e.Name == "" || e.Source != "fuzz.toml" {
				t.Fatalf("entry without name or source: %+v", e)
			}
			if bad[e.Name] {
				t.Fatalf("entry %s came back although it has an error: %v", e.Name, errs)
			}
		}
	})
}
