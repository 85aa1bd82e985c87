package rules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// PCIRule: pci_id = [ "15ad", "15ad:0405", ... ].
type PCIRule struct {
	PCIID []string `toml:"pci_id" json:"pci_id,omitempty"`
}

// PCIFacts are the host's PCI devices.
type PCIFacts struct {
	PCI []PCIDevice `json:"pci"`
}

// PCIDevice is one device's IDs as 4-digit lower-case hex.
type PCIDevice struct {
	Address string `json:"address,omitempty"`
	Vendor  string `json:"vendor"`
	Device  string `json:"device"`
}

//sysextd:rulekind 1 PCIRule PCIFacts
var pciKind = Kind{
	Key: "pci_id",
	Man: `\fBpci_id\fP = [ "\fIVVVV\fP" | "\fIVVVV\fP:\fIDDDD\fP", ... ]
PCI vendor, or vendor and device, in hex (case-insensitive, \fB0x\fP
tolerated), as in \fI/sys/bus/pci/devices/*/{vendor,device}\fP.
`,
	values: func(r *Rules) []string { return r.PCIID },
	validate: func(v string) (string, bool) {
		if _, _, err := ParsePCIRule(v); err != nil {
			return err.Error(), false
		}
		return "", false
	},
	gather: func(_ context.Context, root rootfs.Root, _ Options, f *Facts) (err error) {
		f.PCI, err = readPCI(root)
		return err
	},
	loaded: func(f *Facts) {
		for i, d := range f.PCI {
			f.PCI[i].Vendor, f.PCI[i].Device = normID(d.Vendor), normID(d.Device)
		}
	},
	match: func(pattern string, f *Facts) Check {
		c := Check{Rule: "pci_id", Pattern: strings.TrimSpace(pattern)}
		vendor, device, err := ParsePCIRule(pattern)
		if err != nil {
			c.Fact = err.Error()
			return c
		}
		for _, d := range f.PCI {
			if d.Vendor == vendor && (device == "" || d.Device == device) {
				c.Matched, c.Fact = true, d.Vendor+":"+d.Device
				return c
			}
		}
		c.Fact = fmt.Sprintf("%d PCI devices, none %s", len(f.PCI), strings.Trim(vendor+":"+device, ":"))
		return c
	},
	show: func(f *Facts, _ string) []string {
		if len(f.PCI) == 0 {
			return []string{"pci\t-"}
		}
		var out []string
		for _, d := range f.PCI {
			out = append(out, fmt.Sprintf("pci\t%s:%s\t%s", d.Vendor, d.Device, d.Address))
		}
		return out
	},
	showRank: 3,
}

// ParsePCIRule splits "15ad" or "15ad:0405" (0x tolerated, any case) into
// lower-case 4-digit hex vendor and device ("" for vendor-only rules).
func ParsePCIRule(s string) (vendor, device string, err error) {
	v, d, hasDevice := strings.Cut(strings.TrimSpace(s), ":")
	vendor, err = normHex(v)
	if err != nil {
		return "", "", fmt.Errorf("invalid pci_id %q: %v", s, err)
	}
	if hasDevice {
		if device, err = normHex(d); err != nil {
			return "", "", fmt.Errorf("invalid pci_id %q: %v", s, err)
		}
	}
	return vendor, device, nil
}

func normHex(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	if s == "" || len(s) > 4 {
		return "", fmt.Errorf("want 1 to 4 hex digits, got %q", s)
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("not hex: %q", s)
		}
	}
	return strings.Repeat("0", 4-len(s)) + s, nil
}

// readPCI reads vendor and device IDs straight from sysfs: it needs no
// pci.ids database and no modalias.
func readPCI(root rootfs.Root) ([]PCIDevice, error) {
	dir := root.Path(rootfs.SysfsDir + "/bus/pci/devices")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading PCI devices: %w", err)
	}
	var devs []PCIDevice
	for _, e := range entries {
		vendor, verr := os.ReadFile(filepath.Join(dir, e.Name(), "vendor"))
		device, derr := os.ReadFile(filepath.Join(dir, e.Name(), "device"))
		if verr != nil || derr != nil {
			continue
		}
		devs = append(devs, PCIDevice{Address: e.Name(), Vendor: normID(string(vendor)), Device: normID(string(device))})
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Address < devs[j].Address })
	return devs, nil
}

// normID turns "0x15AD\n" into "15ad".
func normID(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	if len(s) < 4 {
		s = strings.Repeat("0", 4-len(s)) + s
	}
	return s
}
