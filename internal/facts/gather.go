package facts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jaypipes/ghw"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/rules"
)

// VirtDetector asks systemd which virtualization it runs under.
type VirtDetector = rules.VirtDetector

// Options tune Gather.
type Options = rules.Options

// DetectVirtCommand runs systemd-detect-virt.
func DetectVirtCommand(ctx context.Context) (string, error) { return rules.DetectVirtCommand(ctx) }

// Gather reads the facts of the system under root: the OS and what every
// rule kind looks at.
func Gather(ctx context.Context, root rootfs.Root, opts Options) (*Facts, error) {
	f := &Facts{Arch: HostArch()}
	var err error
	if f.OS, err = readOS(root); err != nil {
		return nil, err
	}
	if opts.DMI == nil {
		opts.DMI = ghwDMI
	}
	if f.Facts, err = rules.Gather(ctx, root, opts); err != nil {
		return nil, err
	}
	return f, nil
}

// readOS reads the tree's OS identity (osrelease.ReadOS); a tree with
// no os-release has an empty one.
func readOS(root rootfs.Root) (OS, error) {
	r, err := root.Open()
	if errors.Is(err, fs.ErrNotExist) {
		return OS{}, nil
	}
	if err != nil {
		return OS{}, fmt.Errorf("opening %s: %w", root.Dir(), err)
	}
	defer r.Close()
	id, _, err := osrelease.ReadOS(r)
	if errors.Is(err, fs.ErrNotExist) {
		return OS{}, nil
	}
	return id, err
}

// ghwDMI reads the DMI system vendor and product with ghw (only asked
// where sysfs has DMI: ghw's fallback to the device tree is the
// device_tree rules' business).
func ghwDMI(root rootfs.Root) (rules.DMI, error) {
	opts := []any{ghw.WithDisableWarnings(), ghw.WithDisableTools()}
	if !root.IsHost() {
		opts = append(opts, ghw.WithChroot(root.Dir()))
	}
	info, err := ghw.Product(opts...)
	if err != nil {
		return rules.DMI{}, err
	}
	clean := func(s string) string {
		s = strings.TrimSpace(s)
		if s == "unknown" {
			return ""
		}
		return s
	}
	return rules.DMI{Vendor: clean(info.Vendor), Product: clean(info.Name)}, nil
}
