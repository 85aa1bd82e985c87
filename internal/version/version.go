// Package version orders extension versions: Debian package versions
// (epochs, "~", "+debNuM") and, for rebuilds of the same package version,
// the image's BUILD_TIME.
package version

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	debversion "pault.ag/go/debian/version"
)

// Compare orders two Debian versions the way dpkg does: it returns a
// negative number when a < b, 0 when they are equal and a positive number
// when a > b. An unparsable version is an error naming it.
func Compare(a, b string) (int, error) {
	va, err := debversion.Parse(a)
	if err != nil {
		return 0, fmt.Errorf("parsing version %q: %w", a, err)
	}
	vb, err := debversion.Parse(b)
	if err != nil {
		return 0, fmt.Errorf("parsing version %q: %w", b, err)
	}
	return sign(debversion.Compare(va, vb)), nil
}

// Stamp identifies one build of an extension: the package version and the
// extension-release BUILD_TIME of the image.
type Stamp struct {
	Version   string
	BuildTime string
}

// Compare orders a and b by Version (Debian order) and, when the versions
// are equal, by BuildTime: a newer build is greater. Build times are
// compared as instants when both parse (see ParseBuildTime), otherwise as
// strings; a missing build time is older than any present one. When both
// versions are empty only the build times are compared; when just one is
// empty, or one is not a valid Debian version, Compare returns an error.
func (a Stamp) Compare(b Stamp) (int, error) {
	switch {
	case a.Version == "" && b.Version == "":
	case a.Version == "" || b.Version == "":
		return 0, fmt.Errorf("comparing %q with %q: missing version", a.Version, b.Version)
	default:
		c, err := Compare(a.Version, b.Version)
		if err != nil || c != 0 {
			return c, err
		}
	}
	return compareBuildTime(a.BuildTime, b.BuildTime), nil
}

func compareBuildTime(a, b string) int {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == b:
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	}
	ta, okA := ParseBuildTime(a)
	tb, okB := ParseBuildTime(b)
	if okA && okB {
		return ta.Compare(tb)
	}
	return strings.Compare(a, b)
}

// buildTimeLayouts are the BUILD_TIME spellings ParseBuildTime accepts.
// Layouts without a zone are taken as UTC.
var buildTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 MST",
	"2006-01-02 15:04:05",
	"20060102T150405Z",
	"2006-01-02T15:04Z07:00",
	"2006.01.02-1504",
	"2006-01-02",
	time.UnixDate,
	time.RFC1123Z,
	time.RFC1123,
}

// ParseBuildTime reads an extension-release BUILD_TIME: RFC 3339 / ISO 8601
// ("2026-11-01T09:00:00Z"), common date(1) spellings, a release tag style
// "2026.11.01-0900", or Unix seconds. It reports false when s matches none.
func ParseBuildTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if strings.TrimLeft(s, "0123456789") == "" && len(s) <= 12 {
		secs, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return time.Unix(secs, 0).UTC(), true
		}
	}
	for _, layout := range buildTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// UpdateAvailable reports whether avail is newer than inst by Stamp.Compare,
// the comparison update's plan makes: a rebuild (same Version, newer
// BuildTime) is an update. list uses it so both verbs agree.
func UpdateAvailable(avail, inst Stamp) (bool, error) {
	c, err := avail.Compare(inst)
	return c > 0, err
}

// IsRebuild reports whether avail is a newer build of inst's own version,
// which list shows as "VERSION (rebuilt BUILD_TIME)".
func IsRebuild(avail, inst Stamp) bool {
	if avail.Version == "" || avail.Version != inst.Version {
		return false
	}
	return compareBuildTime(avail.BuildTime, inst.BuildTime) > 0
}
