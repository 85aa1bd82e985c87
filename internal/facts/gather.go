package facts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jaypipes/ghw"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// VirtDetector asks systemd which virtualization it runs under. It returns
// systemd's name ("vmware", "kvm", "none", ...).
type VirtDetector func(ctx context.Context) (string, error)

// Options tune Gather.
type Options struct {
	// Files are the in-root flag-file paths to check (the manifests' if_file).
	Files []string
	// Virt detectors are tried in order; the first answer wins. With none
	// given, `systemd-detect-virt` is used. None answering means "none".
	Virt   []VirtDetector
	Logger *slog.Logger
}

// virtTimeout bounds every virtualization probe so a hung D-Bus or binary
// can never hang a run.
const virtTimeout = 3 * time.Second

// Gather reads the facts of the system under root.
func Gather(ctx context.Context, root rootfs.Root, opts Options) (*Facts, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Facts{Arch: HostArch(), Files: map[string]bool{}}
	var err error
	if f.OS, err = readOS(root); err != nil {
		return nil, err
	}
	if f.PCI, err = readPCI(root); err != nil {
		return nil, err
	}
	f.DMI = readDMI(root, log)
	if f.DeviceTree, err = readDeviceTree(root); err != nil {
		return nil, err
	}
	for _, p := range opts.Files {
		_, statErr := os.Stat(root.Path(p))
		f.Files[p] = statErr == nil
	}
	f.Virtualization = detectVirt(ctx, opts.Virt, log)
	return f, nil
}

func readOS(root rootfs.Root) (OS, error) {
	for _, p := range []string{rootfs.EtcOSRelease, rootfs.UsrOSRelease} {
		data, err := os.ReadFile(root.Path(p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return OS{}, fmt.Errorf("reading %s: %w", p, err)
		}
		kv := osrelease.Parse(data)
		return OS{ID: kv["ID"], IDLike: kv["ID_LIKE"], VersionID: kv["VERSION_ID"], VersionCodename: kv["VERSION_CODENAME"], SysextLevel: kv["SYSEXT_LEVEL"]}, nil
	}
	return OS{}, nil
}

// readPCI reads vendor and device IDs straight from sysfs: it needs no
// pci.ids database and no modalias, which ghw.PCI does.
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

// readDMI uses ghw, but only where DMI exists: ghw falls back to the device
// tree, which the device_tree rules already cover.
func readDMI(root rootfs.Root, log *slog.Logger) DMI {
	if _, err := os.Stat(root.Path(rootfs.SysfsDir + "/class/dmi/id")); err != nil {
		return DMI{}
	}
	opts := []any{ghw.WithDisableWarnings(), ghw.WithDisableTools()}
	if !root.IsHost() {
		opts = append(opts, ghw.WithChroot(root.Dir()))
	}
	info, err := ghw.Product(opts...)
	if err != nil {
		log.Debug("reading DMI", "err", err)
		return DMI{}
	}
	clean := func(s string) string {
		s = strings.TrimSpace(s)
		if s == "unknown" {
			return ""
		}
		return s
	}
	return DMI{Vendor: clean(info.Vendor), Product: clean(info.Name)}
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

func detectVirt(ctx context.Context, detectors []VirtDetector, log *slog.Logger) string {
	if len(detectors) == 0 {
		detectors = []VirtDetector{DetectVirtCommand}
	}
	for _, d := range detectors {
		cctx, cancel := context.WithTimeout(ctx, virtTimeout)
		v, err := d(cctx)
		cancel()
		if err != nil {
			log.Debug("virtualization probe failed", "err", err)
			continue
		}
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return "none"
}

// DetectVirtCommand runs systemd-detect-virt. Its exit status is 1 when it
// prints "none", which is an answer, not a failure.
func DetectVirtCommand(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "systemd-detect-virt").Output()
	v := strings.TrimSpace(string(out))
	if v != "" {
		return v, nil
	}
	if err != nil {
		return "", fmt.Errorf("running systemd-detect-virt: %w", err)
	}
	return "none", nil
}
