// Package rootfs resolves every path the tools touch under one root
// directory, the way systemd-sysext --root does. No other package spells a
// host path: they ask a Root.
package rootfs

import (
	"os"
	"path/filepath"
	"strings"
)

// Well-known locations, absolute inside the root.
const (
	VendorManifest = "/usr/spamtagger/etc/sysext.toml"
	LocalManifest  = "/etc/spamtagger/etc/sysext.toml"
	DropinDir      = "/etc/spamtagger/etc/sysext.d"
	DaemonConfig   = "/etc/sysextd/sysextd.toml"
	AuthConfig     = "/etc/sysextd/auth.conf"   // mirror logins, APT's auth.conf format
	AuthConfigDir  = "/etc/sysextd/auth.conf.d" // more of them, *.conf
	RegistryAuth   = "/etc/sysextd/auth.json"   // OCI registry logins, containers-auth.json format

	ExtensionsDir    = "/var/lib/extensions"
	EtcExtensionsDir = "/etc/extensions"
	RunExtensionsDir = "/run/extensions"
	StateDir         = "/var/lib/sysextd"
	// UnconfirmedMarker exists while state.json lists a change on
	// probation: sysextd-boot-check.service runs only when it does
	// (ConditionPathExists=), so a normal boot pays one stat for it.
	UnconfirmedMarker = StateDir + "/unconfirmed"
	CacheDir          = "/var/cache/sysextd"
	MachineID         = "/etc/machine-id"
	RunDir            = "/run/sysextd"

	RebootRequired     = "/run/reboot-required"
	RebootRequiredPkgs = "/run/reboot-required.pkgs"

	EtcOSRelease = "/etc/os-release"
	UsrOSRelease = "/usr/lib/os-release"
	SysfsDir     = "/sys"
	ProcDir      = "/proc"
	DeviceTree   = "/proc/device-tree/compatible"

	UnitDir = "/usr/lib/systemd/system"
)

// Root is the directory every path is resolved under. The zero value and
// New("/") are the running host.
type Root struct {
	dir string
}

// New returns a Root for dir; "" and any spelling of "/" ("//", "/./",
// "/tmp/..") mean the host. dir is cleaned before it is compared, so that a
// roundabout spelling of the host never switches off what only the host has
// (D-Bus, the service manager).
func New(dir string) Root {
	if dir == "" {
		return Root{}
	}
	clean := filepath.Clean(dir)
	if abs, err := filepath.Abs(clean); err == nil {
		clean = abs
	}
	if clean == "/" {
		return Root{}
	}
	return Root{dir: clean}
}

// Dir is the root directory itself ("/" for the host).
func (r Root) Dir() string {
	if r.dir == "" {
		return "/"
	}
	return r.dir
}

// IsHost reports whether the root is the running system's own /.
func (r Root) IsHost() bool { return r.dir == "" }

// Path joins an absolute in-root path under the root. Relative paths are
// treated as if they started with "/"; ".." can never climb above the root.
func (r Root) Path(p string) string {
	clean := filepath.Clean("/" + p)
	if r.dir == "" {
		return clean
	}
	return filepath.Join(r.dir, clean)
}

// Open opens the root as an *os.Root: writes through it resolve symlinks
// inside the root and never escape it. The caller closes it.
func (r Root) Open() (*os.Root, error) {
	return os.OpenRoot(r.Dir())
}

// InRoot is p (an absolute in-root path) in the form *os.Root methods take:
// relative to the root, cleaned, never climbing above it.
func InRoot(p string) string {
	rel := strings.TrimPrefix(filepath.Clean("/"+p), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// Rel converts a host path under the root back to its in-root form.
func (r Root) Rel(hostPath string) string {
	if r.dir == "" {
		return filepath.Clean(hostPath)
	}
	rel, err := filepath.Rel(r.dir, hostPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		return hostPath
	}
	return filepath.Clean("/" + rel)
}
