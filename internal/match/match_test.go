package match

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/rules"
)

func host() *facts.Facts {
	return &facts.Facts{Facts: rules.Facts{
		PCIFacts:        rules.PCIFacts{PCI: []facts.PCIDevice{{Vendor: "15ad", Device: "0405"}, {Vendor: "8086", Device: "7190"}}},
		DMIFacts:        rules.DMIFacts{DMI: facts.DMI{Vendor: "LENOVO", Product: "20W8S0K900"}},
		DeviceTreeFacts: rules.DeviceTreeFacts{DeviceTree: []string{"raspberrypi,4-model-b", "brcm,bcm2711"}},
		VirtFacts:       rules.VirtFacts{Virtualization: "vmware"},
		FileFacts:       rules.FileFacts{Files: map[string]bool{"/var/flag": true}},
	}}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name        string
		entry       manifest.Entry
		wantReasons []string
	}{
		{"no rules", manifest.Entry{}, []string{}},
		{"empty lists", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{}}, DMIRule: rules.DMIRule{DMI: []string{}}, VirtRule: rules.VirtRule{VirtEnv: []string{}}}}, []string{}},
		{"pci full", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"15ad:0405"}}}}, []string{"pci_id 15ad:0405"}},
		{"pci upper 0x", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"0x15AD:0x0405"}}}}, []string{"pci_id 0x15AD:0x0405"}},
		{"pci vendor only", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"15ad"}}}}, []string{"pci_id 15ad"}},
		{"pci wrong device", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"15ad:0740"}}}}, []string{}},
		{"pci 1234 vs 1234:5678", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"1234"}}}}, []string{}},
		{"pci short hex padded", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"15ad:405"}}}}, []string{"pci_id 15ad:405"}},
		{"pci invalid never matches", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"zzzz"}}}}, []string{}},
		{"dmi vendor", manifest.Entry{Rules: rules.Rules{DMIRule: rules.DMIRule{DMI: []string{"lenovo"}}}}, []string{"dmi lenovo"}},
		{"dmi vendor product spaces", manifest.Entry{Rules: rules.Rules{DMIRule: rules.DMIRule{DMI: []string{" LENOVO : 20w8s0k900 "}}}}, []string{"dmi LENOVO : 20w8s0k900"}},
		{"dmi wrong product", manifest.Entry{Rules: rules.Rules{DMIRule: rules.DMIRule{DMI: []string{"LENOVO:20XX"}}}}, []string{}},
		{"dmi other vendor", manifest.Entry{Rules: rules.Rules{DMIRule: rules.DMIRule{DMI: []string{"Dell Inc."}}}}, []string{}},
		{"dt full", manifest.Entry{Rules: rules.Rules{DeviceTreeRule: rules.DeviceTreeRule{DeviceTree: []string{"brcm,bcm2711"}}}}, []string{"device_tree brcm,bcm2711"}},
		{"dt first field of second entry", manifest.Entry{Rules: rules.Rules{DeviceTreeRule: rules.DeviceTreeRule{DeviceTree: []string{"brcm"}}}}, []string{"device_tree brcm"}},
		{"dt prefix is not a match", manifest.Entry{Rules: rules.Rules{DeviceTreeRule: rules.DeviceTreeRule{DeviceTree: []string{"raspberry"}}}}, []string{}},
		{"virt", manifest.Entry{Rules: rules.Rules{VirtRule: rules.VirtRule{VirtEnv: []string{"kvm", "vmware"}}}}, []string{"virt_env vmware"}},
		{"virt other", manifest.Entry{Rules: rules.Rules{VirtRule: rules.VirtRule{VirtEnv: []string{"kvm"}}}}, []string{}},
		{"if_file present", manifest.Entry{Rules: rules.Rules{FileRule: rules.FileRule{IfFile: "/var/flag"}}}, []string{"if_file /var/flag"}},
		{"if_file absent", manifest.Entry{Rules: rules.Rules{FileRule: rules.FileRule{IfFile: "/var/other"}}}, []string{}},
		{"several match", manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"15ad:0405"}}, VirtRule: rules.VirtRule{VirtEnv: []string{"vmware"}}}}, []string{"pci_id 15ad:0405", "virt_env vmware"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(&tt.entry, host())
			if !reflect.DeepEqual(got.Reasons, tt.wantReasons) {
				t.Errorf("reasons = %q, want %q", got.Reasons, tt.wantReasons)
			}
			if got.Recommended != (len(tt.wantReasons) > 0) {
				t.Errorf("recommended = %v with reasons %q", got.Recommended, got.Reasons)
			}
		})
	}
}

func TestEvaluateFactsFromSysfs(t *testing.T) {
	// Values read from sysfs carry 0x prefixes, upper case and newlines; the
	// fake roots reproduce that.
	f, err := facts.Gather(t.Context(), rootfs.New(filepath.Join("../../testdata/roots", "vmware")), facts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := Evaluate(&manifest.Entry{Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{"15ad:0405"}}, DMIRule: rules.DMIRule{DMI: []string{"vmware, inc.:VMware Virtual Platform"}}}}, f)
	if want := []string{"pci_id 15ad:0405", "dmi vmware, inc.:VMware Virtual Platform"}; !reflect.DeepEqual(got.Reasons, want) {
		t.Errorf("reasons = %q, want %q", got.Reasons, want)
	}
}

// BenchmarkFactsAndMatch100 is the budget: gathering facts from a
// sysfs tree and evaluating 100 manifest entries must stay under 5 ms.
func BenchmarkFactsAndMatch100(b *testing.B) {
	root := rootfs.New(filepath.Join("../../testdata/roots", "vmware"))
	entries := make([]*manifest.Entry, 100)
	var files []string
	for i := range entries {
		flag := fmt.Sprintf("/var/spamtagger/flag-%d", i)
		files = append(files, flag)
		entries[i] = &manifest.Entry{
			Name:  fmt.Sprintf("ext-%d", i),
			Rules: rules.Rules{PCIRule: rules.PCIRule{PCIID: []string{fmt.Sprintf("%04x:%04x", i, i), "15ad:0405"}}, DMIRule: rules.DMIRule{DMI: []string{"LENOVO:20W8S0K900"}}, DeviceTreeRule: rules.DeviceTreeRule{DeviceTree: []string{"raspberrypi"}}, VirtRule: rules.VirtRule{VirtEnv: []string{"kvm", "qemu"}}, FileRule: rules.FileRule{IfFile: flag}}}
	}
	virt := func(context.Context) (string, error) { return "vmware", nil }
	b.ReportAllocs()
	for b.Loop() {
		f, err := facts.Gather(b.Context(), root, facts.Options{Files: files, Virt: []facts.VirtDetector{virt}})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if Evaluate(e, f).Recommended {
				n++
			}
		}
		if n != 100 {
			b.Fatalf("recommended %d, want 100", n)
		}
	}
}
