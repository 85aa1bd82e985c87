package image

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel kinds of validation failure. Validate returns a *ValidationError
// whose Unwrap gives one of these, so callers can branch with errors.Is.
var (
	ErrNoRelease        = errors.New("no extension-release file")
	ErrMultipleReleases = errors.New("more than one extension-release file")
	ErrNameMismatch     = errors.New("extension-release name mismatch")
	ErrMissingID        = errors.New("extension-release has no ID")
	ErrIDMismatch       = errors.New("extension-release ID mismatch")
	ErrMissingVersion   = errors.New("extension-release has no VERSION_ID")
	ErrVersionMismatch  = errors.New("extension-release version mismatch")
	ErrArchMismatch     = errors.New("extension-release architecture mismatch")
	ErrScopeMismatch    = errors.New("extension-release scope excludes the system")
)

// ValidationError says why an image may not be used on this host. Every
// failure of Validate is one; Kind is one of the Err* sentinels above.
type ValidationError struct {
	Image string // path of the image file
	Kind  error
	Msg   string // what was found against what was wanted
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("image %s: %s", e.Image, e.Msg)
}

// Unwrap returns the sentinel kind.
func (e *ValidationError) Unwrap() error { return e.Kind }

// Host is what an image is validated against: the host os-release ID,
// VERSION_ID and SYSEXT_LEVEL, and its architecture in Debian names.
type Host struct {
	ID, VersionID, SysextLevel, Arch string
}

// anyValue is systemd's wildcard for ID= and ARCHITECTURE=.
const anyValue = "_any"

// Validate checks that the image described by info may be merged on host,
// following systemd-sysext's rules (docs/extension-release.md):
//
//   - exactly one extension-release file, named wantName when wantName != "";
//   - ID equals host.ID, or is "_any" (then no version check);
//   - SYSEXT_LEVEL equals host.SysextLevel when both are set, otherwise
//     VERSION_ID equals host.VersionID when the host has one (a host with
//     neither, a rolling release, only needs the ID to match);
//   - ARCHITECTURE (systemd names), unless absent or "_any", equals the
//     host's; ARCH (Debian names), unless absent, "_any" or "all", equals
//     host.Arch;
//   - SYSEXT_SCOPE, when present, includes "system" (systemd skips an
//     extension scoped to "initrd" or "portable" only on a booted system).
//
// The first failure is returned as a *ValidationError. Top-level entries
// other than usr and opt are not errors (systemd ignores them) but are
// reported in warnings.
func Validate(info *Info, host Host, wantName string) (warnings []string, err error) {
	for _, e := range info.TopLevel {
		if e != "usr" && e != "opt" {
			warnings = append(warnings, fmt.Sprintf(
				"image %s: top-level entry %q is ignored by systemd-sysext (only /usr and /opt are merged)", info.Path, e))
		}
	}
	fail := func(kind error, format string, args ...any) ([]string, error) {
		return warnings, &ValidationError{Image: info.Path, Kind: kind, Msg: fmt.Sprintf(format, args...)}
	}
	switch len(info.ReleaseNames) {
	case 0:
		return fail(ErrNoRelease, "no %s/extension-release.* file", ReleaseDir)
	case 1:
	default:
		return fail(ErrMultipleReleases, "%d extension-release files, want exactly one: extension-release.%s",
			len(info.ReleaseNames), strings.Join(info.ReleaseNames, ", extension-release."))
	}
	if wantName != "" && info.Name != wantName {
		return fail(ErrNameMismatch, "extension-release name %q does not match expected %q", info.Name, wantName)
	}
	f := info.Fields

	if a := f["ARCHITECTURE"]; a != "" && a != anyValue {
		if want := DebianToSystemdArch(host.Arch); a != want {
			return fail(ErrArchMismatch, "extension-release ARCHITECTURE %q does not match host architecture %q (%s)", a, want, host.Arch)
		}
	}
	if a := f["ARCH"]; a != "" && a != anyValue && a != "all" && a != host.Arch {
		return fail(ErrArchMismatch, "extension-release ARCH %q does not match host architecture %q", a, host.Arch)
	}

	if scope, ok := f["SYSEXT_SCOPE"]; ok && !slices.Contains(strings.Fields(scope), "system") {
		return fail(ErrScopeMismatch, "extension-release SYSEXT_SCOPE %q does not include \"system\"", scope)
	}

	id := f["ID"]
	switch {
	case id == "":
		return fail(ErrMissingID, "extension-release has no ID (want %q or %q)", host.ID, anyValue)
	case id == anyValue:
		return warnings, nil
	case id != host.ID:
		return fail(ErrIDMismatch, "extension-release ID %q does not match host ID %q", id, host.ID)
	}

	level, version := f["SYSEXT_LEVEL"], f["VERSION_ID"]
	switch {
	case host.SysextLevel != "" && level != "":
		if level != host.SysextLevel {
			return fail(ErrVersionMismatch, "extension-release SYSEXT_LEVEL %q does not match host SYSEXT_LEVEL %q", level, host.SysextLevel)
		}
	case host.VersionID != "":
		if version == "" {
			return fail(ErrMissingVersion, "extension-release has no VERSION_ID (want %q)", host.VersionID)
		}
		if version != host.VersionID {
			return fail(ErrVersionMismatch, "extension-release VERSION_ID %q does not match host VERSION_ID %q", version, host.VersionID)
		}
	}
	return warnings, nil
}

// DebianToSystemdArch maps a Debian architecture name to the name systemd
// uses in ARCHITECTURE= and ConditionArchitecture= (amd64 -> x86-64). It
// returns "" for an architecture it does not know.
func DebianToSystemdArch(deb string) string {
	switch deb {
	case "amd64":
		return "x86-64"
	case "arm64":
		return "arm64"
	case "armhf", "armel":
		return "arm"
	case "i386":
		return "x86"
	case "ppc64el":
		return "ppc64-le"
	case "ppc64":
		return "ppc64"
	case "riscv64":
		return "riscv64"
	case "s390x":
		return "s390x"
	case "loong64":
		return "loongarch64"
	case "mips64el":
		return "mips64-le"
	case "mipsel":
		return "mips-le"
	}
	return ""
}
