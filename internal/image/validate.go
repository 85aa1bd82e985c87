package image

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Sentinel kinds of validation failure. Validate returns a *ValidationError
// whose Unwrap gives one of these, so callers can branch with errors.Is.
var (
	ErrNoRelease        = errors.New("no extension-release file")
	ErrMultipleReleases = errors.New("more than one extension-release file")
	ErrNameMismatch     = errors.New("extension-release name mismatch")
	ErrBadRelease       = errors.New("extension-release file unreadable")
	ErrMissingID        = errors.New("extension-release has no ID")
	ErrIDMismatch       = errors.New("extension-release ID mismatch")
	ErrMissingVersion   = errors.New("extension-release has no VERSION_ID")
	ErrVersionMismatch  = errors.New("extension-release version mismatch")
	ErrArchMismatch     = errors.New("extension-release architecture mismatch")
	ErrScopeMismatch    = errors.New("extension-release scope excludes the system")
	ErrForbiddenContent = errors.New("image carries a file systemd refuses")
)

// ValidationError says why an image may not be used on this host. Every
// failure of Validate is one; Kind is one of the Err* sentinels above.
type ValidationError struct {
	Image string // Info.Display: the asset, not the staging file
	Kind  error
	Msg   string // what was found against what was wanted
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("image %s: %s", e.Image, e.Msg)
}

// Unwrap returns the sentinel kind.
func (e *ValidationError) Unwrap() error { return e.Kind }

// Host is what an image is validated against: the host os-release ID,
// ID_LIKE (space-separated), VERSION_ID and SYSEXT_LEVEL, and its
// architecture in Debian names.
type Host struct {
	ID, IDLike, VersionID, SysextLevel, Arch string
}

// anyValue is systemd's wildcard for ID= and ARCHITECTURE=.
const anyValue = "_any"

// Validate checks that the image described by info may be merged on host
// under the name wantName (the image file's name without ".raw"), following
// systemd-sysext 257 rule by rule (docs/extension-release.md):
//
//   - the image must not carry usr/lib/os-release;
//   - the release file is extension-release.<wantName> (a symlink is
//     followed inside the image); when there is none, the one regular
//     extension-release.* file whose user.extension-release.strict xattr is
//     false stands in, and two such files are an error. wantName "" takes
//     the only extension-release file there is;
//   - the file must be valid UTF-8 and carry some assignment;
//   - SYSEXT_SCOPE, when present, lists "system";
//   - ARCHITECTURE, unless empty or "_any", is the host's (systemd names);
//   - ID is "_any" (no further check), the host's ID or a word of its ID_LIKE;
//   - SYSEXT_LEVEL equals the host's when both are set, otherwise
//     VERSION_ID equals the host's when the host has one.
//
// Ours, not systemd's: ARCH (Debian names, written by the template), unless
// empty, "_any" or "all", must be host.Arch.
//
// On success info.Name and info.Fields are those of the file used (set
// only when Inspect could not know them: safe on a shared, cached Info). Top-level
// entries other than usr and opt are not errors (systemd ignores them) but
// are reported in warnings.
func Validate(info *Info, host Host, wantName string) (warnings []string, err error) {
	display := info.Display
	if display == "" {
		display = info.Path
	}
	for _, e := range info.TopLevel {
		if e != "usr" && e != "opt" {
			warnings = append(warnings, fmt.Sprintf(
				"image %s: top-level entry %q is ignored by systemd-sysext (only /usr and /opt are merged)", display, e))
		}
	}
	fail := func(kind error, format string, args ...any) ([]string, error) {
		return warnings, &ValidationError{Image: display, Kind: kind, Msg: fmt.Sprintf(format, args...)}
	}
	if info.HasOSRelease {
		return fail(ErrForbiddenContent, "carries /%s, which systemd-sysext refuses (it would replace the host's)", OSRelease)
	}
	rel, msg, kind := pickRelease(info, wantName)
	if rel == nil {
		return fail(kind, "%s", msg)
	}
	if rel.ParseErr != nil {
		return fail(ErrBadRelease, "%s/extension-release.%s: %v", ReleaseDir, rel.Name, rel.ParseErr)
	}
	f := rel.Fields
	if len(f) == 0 {
		return fail(ErrMissingID, "%s/extension-release.%s carries no release data", ReleaseDir, rel.Name)
	}

	if scope, ok := f["SYSEXT_SCOPE"]; ok && !slices.Contains(strings.Fields(scope), "system") {
		return fail(ErrScopeMismatch, "extension-release SYSEXT_SCOPE %q does not include \"system\"", scope)
	}
	if a := f["ARCHITECTURE"]; a != "" && a != anyValue {
		if want := DebianToSystemdArch(host.Arch); a != want {
			return fail(ErrArchMismatch, "extension-release ARCHITECTURE %q does not match host architecture %q (%s)", a, want, host.Arch)
		}
	}
	// Ours: the template's ARCH in Debian names.
	if a := f["ARCH"]; a != "" && a != anyValue && a != "all" && a != host.Arch {
		return fail(ErrArchMismatch, "extension-release ARCH %q does not match host architecture %q (sysextd's own check)", a, host.Arch)
	}

	id := f["ID"]
	switch {
	case id == "":
		return fail(ErrMissingID, "extension-release has no ID (want %q or %q)", host.ID, anyValue)
	case id == anyValue:
		info.use(rel)
		return warnings, nil
	case id != host.ID && !slices.Contains(strings.Fields(host.IDLike), id):
		if host.IDLike != "" {
			return fail(ErrIDMismatch, "extension-release ID %q matches neither host ID %q nor ID_LIKE %q", id, host.ID, host.IDLike)
		}
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
	info.use(rel)
	return warnings, nil
}

// use records rel as the release file in force. It writes only when that
// changes something (the fallback file, or several files), so a cached
// Info validated again, even concurrently, is not written to.
func (info *Info) use(rel *Release) {
	if info.Name != rel.Name {
		info.Name, info.Fields = rel.Name, rel.Fields
	}
}

// pickRelease chooses the extension-release file systemd 257 would read
// (open_extension_release_at), or says why there is none.
func pickRelease(info *Info, want string) (*Release, string, error) {
	if want == "" {
		switch len(info.Releases) {
		case 0:
			return nil, fmt.Sprintf("no %s/extension-release.* file", ReleaseDir), ErrNoRelease
		case 1:
			want = info.Releases[0].Name
		default:
			return nil, fmt.Sprintf("%d extension-release files and no name to choose by: extension-release.%s",
				len(info.Releases), strings.Join(info.ReleaseNames, ", extension-release.")), ErrMultipleReleases
		}
	}
	for i := range info.Releases {
		r := &info.Releases[i]
		if r.Name != want || r.Missing {
			continue
		}
		if !r.Regular {
			return nil, fmt.Sprintf("%s/extension-release.%s is not a regular file", ReleaseDir, want), ErrBadRelease
		}
		return r, "", nil
	}
	// Fallback: a regular file marked user.extension-release.strict=false.
	var found *Release
	for i := range info.Releases {
		r := &info.Releases[i]
		if r.Symlink || !r.Regular || !r.StrictSet || !validImageName(r.Name) {
			continue
		}
		if b, ok := parseBoolean(r.Strict); !ok || b {
			continue
		}
		if found != nil {
			return nil, fmt.Sprintf("no extension-release.%s, and both extension-release.%s and extension-release.%s have %s=0 (systemd refuses the ambiguity)",
				want, found.Name, r.Name, StrictXattr), ErrMultipleReleases
		}
		found = r
	}
	if found != nil {
		return found, "", nil
	}
	if len(info.Releases) == 0 {
		return nil, fmt.Sprintf("no %s/extension-release.%s file", ReleaseDir, want), ErrNoRelease
	}
	return nil, fmt.Sprintf("no %s/extension-release.%s (found extension-release.%s, without %s=0)",
		ReleaseDir, want, strings.Join(info.ReleaseNames, ", extension-release."), StrictXattr), ErrNameMismatch
}

// parseBoolean is systemd's parse_boolean().
func parseBoolean(s string) (v, ok bool) {
	switch strings.ToLower(s) {
	case "1", "yes", "y", "true", "t", "on":
		return true, true
	case "0", "no", "n", "false", "f", "off":
		return false, true
	}
	return false, false
}

// validImageName is systemd's image_name_is_valid(): a valid file name
// without control characters, valid UTF-8, not a ".#" temporary.
func validImageName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 || strings.ContainsRune(s, '/') || strings.HasPrefix(s, ".#") {
		return false
	}
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
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

// Verdict inspects and validates the image at p as wantName on host and
// says whether systemd-sysext would merge it, with the reason when not. It
// is what the agreement tests compare with systemd.
func Verdict(ctx context.Context, p, display, wantName string, host Host) (merge bool, why string) {
	info, err := InspectNamed(ctx, p, display)
	if err != nil {
		return false, err.Error()
	}
	if _, err := Validate(info, host, wantName); err != nil {
		return false, err.Error()
	}
	return true, ""
}
