package rules

import (
	"context"
	"os"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// DMIRule: dmi = [ "VENDOR", "VENDOR:PRODUCT", ... ].
type DMIRule struct {
	DMI []string `toml:"dmi" json:"dmi,omitempty"`
}

// DMIFacts are the host's DMI system vendor and product.
type DMIFacts struct {
	DMI DMI `json:"dmi"`
}

// DMI holds the trimmed system vendor and product name.
type DMI struct {
	Vendor  string `json:"vendor"`
	Product string `json:"product"`
}

//sysextd:rulekind 2 DMIRule DMIFacts
var dmiKind = Kind{
	Key: "dmi",
	Man: `\fBdmi\fP = [ "\fIVENDOR\fP" | "\fIVENDOR\fP:\fIPRODUCT\fP", ... ]
DMI system vendor, or vendor and product name, compared case-insensitively
after trimming.
`,
	values:   func(r *Rules) []string { return r.DMI },
	validate: nonEmpty,
	gather: func(_ context.Context, root rootfs.Root, o Options, f *Facts) error {
		if _, err := os.Stat(root.Path(rootfs.SysfsDir + "/class/dmi/id")); err != nil {
			return nil // no DMI (the device tree rules cover such boards)
		}
		if o.DMI != nil {
			d, err := o.DMI(root)
			if err == nil {
				f.DMI = d
				return nil
			}
			if o.Logger != nil {
				o.Logger.Debug("reading DMI: " + err.Error())
			}
		}
		f.DMI = readDMI(root)
		return nil
	},
	match: func(pattern string, f *Facts) Check {
		dmi := f.DMI
		c := Check{Rule: "dmi", Pattern: strings.TrimSpace(pattern), Fact: dmi.Vendor + ":" + dmi.Product}
		vendor, product, hasProduct := strings.Cut(pattern, ":")
		vendor, product = strings.TrimSpace(vendor), strings.TrimSpace(product)
		if vendor == "" || !strings.EqualFold(vendor, strings.TrimSpace(dmi.Vendor)) {
			return c
		}
		c.Matched = !hasProduct || strings.EqualFold(product, strings.TrimSpace(dmi.Product))
		return c
	},
	show: func(f *Facts, _ string) []string {
		dmi := f.DMI.Vendor
		if f.DMI.Product != "" {
			dmi += ":" + f.DMI.Product
		}
		return []string{"dmi\t" + dash(dmi)}
	},
	showRank: 1,
}

// readDMI reads the system vendor and product name from
// /sys/class/dmi/id, only where DMI exists (the device tree has rules of
// its own). A value the kernel does not know ("unknown") or that cannot be
// read is empty. This is what ghw's product reader did, without linking
// ghw.
func readDMI(root rootfs.Root) DMI {
	dir := rootfs.SysfsDir + "/class/dmi/id"
	if _, err := os.Stat(root.Path(dir)); err != nil {
		return DMI{}
	}
	item := func(name string) string {
		data, err := os.ReadFile(root.Path(dir + "/" + name))
		if err != nil {
			return ""
		}
		s := strings.TrimSpace(string(data))
		if s == "unknown" {
			return ""
		}
		return s
	}
	return DMI{Vendor: item("sys_vendor"), Product: item("product_name")}
}

// nonEmpty refuses a value that is blank.
func nonEmpty(v string) (string, bool) {
	if strings.TrimSpace(v) == "" {
		return "empty rule", false
	}
	return "", false
}
