package facts

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

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
		{"vmware", []PCIDevice{{"0000:00:00.0", "8086", "7190"}, {"0000:00:07.7", "15ad", "0740"}, {"0000:00:0f.0", "15ad", "0405"}},
			DMI{"VMware, Inc.", "VMware Virtual Platform"}, nil, "usr/lib"},
		{"rpi4", []PCIDevice{{"0000:01:00.0", "1106", "3483"}}, DMI{}, []string{"raspberrypi,4-model-b", "brcm,bcm2711"}, "etc"},
		{"lenovo", []PCIDevice{{"0000:00:02.0", "8086", "9a49"}, {"0000:00:14.3", "8086", "a0f0"}}, DMI{"LENOVO", "20W8S0K900"}, nil, "etc"},
		{"kvm", []PCIDevice{{"0000:00:00.0", "8086", "1237"}, {"0000:00:01.0", "1af4", "1000"}}, DMI{"QEMU", "Standard PC (i440FX + PIIX, 1996)"}, nil, "etc"},
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

func TestVirtFallbacks(t *testing.T) {
	failing := func(context.Context) (string, error) { return "", errors.New("no bus") }
	hanging := func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() }
	tests := []struct {
		name string
		ds   []VirtDetector
		want string
	}{
		{"first answers", []VirtDetector{fixedVirt("vmware"), fixedVirt("kvm")}, "vmware"},
		{"falls back", []VirtDetector{failing, fixedVirt("qemu")}, "qemu"},
		{"none answers", []VirtDetector{failing, failing}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detectVirt(t.Context(), tt.ds, slog.New(slog.DiscardHandler)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("hanging probe is cut off", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if got := detectVirt(ctx, []VirtDetector{hanging}, slog.New(slog.DiscardHandler)); got != "none" {
			t.Errorf("got %q, want none", got)
		}
	})
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
