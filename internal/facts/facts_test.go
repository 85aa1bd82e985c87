package facts

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

const roots = "../../testdata/roots"

func fixedVirt(v string) VirtDetector {
	return func(context.Context) (string, error) { return v, nil }
}

func TestGather(t *testing.T) {
	tests := []struct {
		root       string
		wantPCI    []PCIDevice
		wantDMI    DMI
		wantDT     []string
		wantOSFrom string
	}{
		{"vmware", []PCIDevice{{Address: "0000:00:00.0", Vendor: "8086", Device: "7190"}, {Address: "0000:00:07.7", Vendor: "15ad", Device: "0740"}, {Address: "0000:00:0f.0", Vendor: "15ad", Device: "0405"}},
			DMI{Vendor: "VMware, Inc.", Product: "VMware Virtual Platform"}, nil, "usr/lib"},
		{"rpi4", []PCIDevice{{Address: "0000:01:00.0", Vendor: "1106", Device: "3483"}}, DMI{}, []string{"raspberrypi,4-model-b", "brcm,bcm2711"}, "etc"},
		{"lenovo", []PCIDevice{{Address: "0000:00:02.0", Vendor: "8086", Device: "9a49"}, {Address: "0000:00:14.3", Vendor: "8086", Device: "a0f0"}}, DMI{Vendor: "LENOVO", Product: "20W8S0K900"}, nil, "etc"},
		{"kvm", []PCIDevice{{Address: "0000:00:00.0", Vendor: "8086", Device: "1237"}, {Address: "0000:00:01.0", Vendor: "1af4", Device: "1000"}}, DMI{Vendor: "QEMU", Product: "Standard PC (i440FX + PIIX, 1996)"}, nil, "etc"},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			f, err := Gather(t.Context(), rootfs.New(filepath.Join(roots, tt.root)), Options{
				Files: []string{"/usr/lib/os-release", "/var/spamtagger/none.flag"},
				Virt:  []VirtDetector{fixedVirt("kvm")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.PCI, tt.wantPCI) {
				t.Errorf("PCI = %v, want %v", f.PCI, tt.wantPCI)
			}
			if f.DMI != tt.wantDMI {
				t.Errorf("DMI = %+v, want %+v", f.DMI, tt.wantDMI)
			}
			if !reflect.DeepEqual(f.DeviceTree, tt.wantDT) {
				t.Errorf("DeviceTree = %q, want %q", f.DeviceTree, tt.wantDT)
			}
			want := OS{ID: "debian", VersionID: "13", VersionCodename: "trixie"}
			if f.OS != want {
				t.Errorf("OS = %+v, want %+v", f.OS, want)
			}
			if !f.FileExists("/usr/lib/os-release") || f.FileExists("/var/spamtagger/none.flag") {
				t.Errorf("Files = %v", f.Files)
			}
			if f.Virtualization != "kvm" {
				t.Errorf("Virtualization = %q", f.Virtualization)
			}
		})
	}
}

func TestLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "facts.json")
	if err := os.WriteFile(path, []byte(`{"arch":"amd64","pci":[{"vendor":"0x15AD","device":"405"}],"virtualization":""}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.PCI[0].Vendor != "15ad" || f.PCI[0].Device != "0405" || f.Virtualization != "none" || f.Files == nil {
		t.Errorf("Load normalised to %+v", f)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
