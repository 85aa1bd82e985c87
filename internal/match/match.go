// Package match decides whether an extension is recommended for a host: a
// pure function from one manifest entry and the host facts to a decision,
// the reasons for it and every comparison made on the way.
package match

import (
	"fmt"
	"strings"

	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/manifest"
)

// Check is one rule compared with the facts.
type Check struct {
	Rule    string `json:"rule"`    // pci_id, dmi, device_tree, virt_env, if_file
	Pattern string `json:"pattern"` // the rule's value as written
	Matched bool   `json:"matched"`
	// Fact is what matched, or what was compared when nothing did.
	Fact string `json:"fact"`
}

// Reason is the short form shown to people: "pci_id 15ad:0405".
func (c Check) Reason() string { return c.Rule + " " + c.Pattern }

// Result is the decision for one entry.
type Result struct {
	Recommended bool     `json:"recommended"`
	Reasons     []string `json:"reasons"`
	Checks      []Check  `json:"checks"`
}

// Evaluate applies every rule of e to f. Any one match recommends.
func Evaluate(e *manifest.Entry, f *facts.Facts) Result {
	var r Result
	add := func(c Check) {
		r.Checks = append(r.Checks, c)
		if c.Matched {
			r.Recommended = true
			r.Reasons = append(r.Reasons, c.Reason())
		}
	}
	for _, p := range e.PCIID {
		add(matchPCI(p, f.PCI))
	}
	for _, p := range e.DMI {
		add(matchDMI(p, f.DMI))
	}
	for _, p := range e.DeviceTree {
		add(matchDeviceTree(p, f.DeviceTree))
	}
	for _, p := range e.VirtEnv {
		v := strings.TrimSpace(p)
		add(Check{Rule: "virt_env", Pattern: v, Matched: v != "" && v == f.Virtualization, Fact: f.Virtualization})
	}
	if e.IfFile != "" {
		ok := f.FileExists(e.IfFile)
		fact := "absent"
		if ok {
			fact = "exists"
		}
		add(Check{Rule: "if_file", Pattern: e.IfFile, Matched: ok, Fact: fact})
	}
	if r.Reasons == nil {
		r.Reasons = []string{}
	}
	return r
}

func matchPCI(pattern string, devs []facts.PCIDevice) Check {
	c := Check{Rule: "pci_id", Pattern: strings.TrimSpace(pattern)}
	vendor, device, err := manifest.ParsePCIRule(pattern)
	if err != nil {
		c.Fact = err.Error()
		return c
	}
	for _, d := range devs {
		if d.Vendor == vendor && (device == "" || d.Device == device) {
			c.Matched, c.Fact = true, d.Vendor+":"+d.Device
			return c
		}
	}
	c.Fact = fmt.Sprintf("%d PCI devices, none %s", len(devs), strings.Trim(vendor+":"+device, ":"))
	return c
}

func matchDMI(pattern string, dmi facts.DMI) Check {
	c := Check{Rule: "dmi", Pattern: strings.TrimSpace(pattern), Fact: dmi.Vendor + ":" + dmi.Product}
	vendor, product, hasProduct := strings.Cut(pattern, ":")
	vendor, product = strings.TrimSpace(vendor), strings.TrimSpace(product)
	if vendor == "" || !strings.EqualFold(vendor, strings.TrimSpace(dmi.Vendor)) {
		return c
	}
	c.Matched = !hasProduct || strings.EqualFold(product, strings.TrimSpace(dmi.Product))
	return c
}

func matchDeviceTree(pattern string, compatible []string) Check {
	p := strings.TrimSpace(pattern)
	c := Check{Rule: "device_tree", Pattern: p, Fact: strings.Join(compatible, " ")}
	if p == "" {
		return c
	}
	for _, entry := range compatible {
		first, _, _ := strings.Cut(entry, ",")
		if entry == p || first == p {
			c.Matched, c.Fact = true, entry
			return c
		}
	}
	return c
}
