// Package facts gathers what the recommendation rules look at: PCI IDs,
// DMI vendor and product, the device-tree compatible list, the
// virtualization systemd detects, flag files, the OS release and the
// architecture. Everything is read under a rootfs.Root, once per run, or
// loaded from a JSON file of the same shape for offline "what if" answers.
package facts

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rules"
)

// Facts is the host description the matcher consumes. Its JSON form is what
// `sysextctl facts --json` prints and `--facts FILE` reads. The facts the
// rules look at (PCI, DMI, device tree, virtualization, flag files) are
// each rule kind's own (internal/rules).
type Facts struct {
	Arch string `json:"arch"`
	OS   OS     `json:"os"`
	rules.Facts
}

// OS is the tree's OS identity (os-release), the one type every part of
// the tools uses for it.
type OS = osrelease.OS

// PCIDevice and DMI are the pci_id and dmi kinds' facts.
type (
	PCIDevice = rules.PCIDevice
	DMI       = rules.DMI
)

// Load reads facts from a JSON file (the shape `facts --json` prints).
func Load(path string) (*Facts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading facts: %w", err)
	}
	var f Facts
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parsing facts %s: %w", path, err)
	}
	rules.Normalize(&f.Facts)
	return &f, nil
}

// HostArch is the running binary's architecture in Debian's names.
func HostArch() string { return DebianArch(runtime.GOARCH) }

// DebianArch maps a GOARCH to Debian's architecture name.
func DebianArch(goarch string) string {
	switch goarch {
	case "arm":
		return "armhf"
	case "386":
		return "i386"
	case "ppc64le":
		return "ppc64el"
	}
	return goarch // amd64, arm64, riscv64, s390x
}
