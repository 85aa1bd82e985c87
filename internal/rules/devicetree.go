package rules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// DeviceTreeRule: device_tree = [ "COMPATIBLE", ... ].
type DeviceTreeRule struct {
	DeviceTree []string `toml:"device_tree" json:"device_tree,omitempty"`
}

// DeviceTreeFacts are the entries of the device tree's compatible list.
type DeviceTreeFacts struct {
	DeviceTree []string `json:"device_tree"`
}

//sysextd:rulekind 3 DeviceTreeRule DeviceTreeFacts
var deviceTreeKind = Kind{
	Key: "device_tree",
	Man: `\fBdevice_tree\fP = [ "\fICOMPATIBLE\fP", ... ]
Matches an entry of \fI/proc/device-tree/compatible\fP, or its part before
the first comma (\fB"raspberrypi"\fP matches \fBraspberrypi,4-model-b\fP).
`,
	values:   func(r *Rules) []string { return r.DeviceTree },
	validate: nonEmpty,
	gather: func(_ context.Context, root rootfs.Root, _ Options, f *Facts) (err error) {
		f.DeviceTree, err = readDeviceTree(root)
		return err
	},
	match: func(pattern string, f *Facts) Check {
		p := strings.TrimSpace(pattern)
		c := Check{Rule: "device_tree", Pattern: p, Fact: strings.Join(f.DeviceTree, " ")}
		if p == "" {
			return c
		}
		for _, entry := range f.DeviceTree {
			first, _, _ := strings.Cut(entry, ",")
			if entry == p || first == p {
				c.Matched, c.Fact = true, entry
				return c
			}
		}
		return c
	},
	show: func(f *Facts, _ string) []string {
		return []string{"device_tree\t" + dash(strings.Join(f.DeviceTree, " "))}
	},
	showRank: 2,
}

func readDeviceTree(root rootfs.Root) ([]string, error) {
	data, err := os.ReadFile(root.Path(rootfs.DeviceTree))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading device tree: %w", err)
	}
	var out []string
	for _, s := range strings.Split(string(data), "\x00") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
