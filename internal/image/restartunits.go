package image

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The extension-release fields listing units to restart (systemd#42368).
const (
	FieldRestartUnits         = "EXTENSION_RESTART_UNITS"
	FieldReloadOrRestartUnits = "EXTENSION_RELOAD_OR_RESTART_UNITS"
)

// ErrBadRestartUnit is wrapped by RestartUnits for a unit name systemd would
// not accept.
var ErrBadRestartUnit = errors.New("invalid unit name")

// unitTypes are systemd's unit type suffixes.
var unitTypes = []string{
	".service", ".socket", ".target", ".device", ".mount", ".automount",
	".swap", ".timer", ".path", ".slice", ".scope",
}

// maxUnitName is systemd's UNIT_NAME_MAX.
const maxUnitName = 255

// RestartUnits reads EXTENSION_RESTART_UNITS= and
// EXTENSION_RELOAD_OR_RESTART_UNITS= from an extension-release file's fields
// as systemd-sysext 262 does: each is a whitespace-separated list of unit
// names; a unit listed in both is only restarted (restart wins); repeats are
// dropped, first occurrence order is kept. Both nil when neither field is
// set. A name systemd's unit_name_is_valid() would refuse (no known type
// suffix, a template such as "foo@.service", a "/" or another character
// outside [A-Za-z0-9:_.\\@-], longer than 255) is an error wrapping
// ErrBadRestartUnit that names the field and the name; nothing is returned
// then, so a caller never acts on half a list.
func RestartUnits(fields map[string]string) (restart, reloadOrRestart []string, err error) {
	restart, err = unitList(fields, FieldRestartUnits)
	if err != nil {
		return nil, nil, err
	}
	reloadOrRestart, err = unitList(fields, FieldReloadOrRestartUnits)
	if err != nil {
		return nil, nil, err
	}
	reloadOrRestart = slices.DeleteFunc(reloadOrRestart, func(u string) bool { return slices.Contains(restart, u) })
	if len(reloadOrRestart) == 0 {
		reloadOrRestart = nil
	}
	return restart, reloadOrRestart, nil
}

func unitList(fields map[string]string, key string) ([]string, error) {
	var out []string
	for _, u := range strings.Fields(fields[key]) {
		if !validUnitName(u) {
			return nil, fmt.Errorf("%s=: %w %q", key, ErrBadRestartUnit, u)
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// validUnitName is systemd's unit_name_is_valid(name, UNIT_NAME_PLAIN |
// UNIT_NAME_INSTANCE): "foo.service" and "foo@bar.service", not templates.
func validUnitName(name string) bool {
	if len(name) > maxUnitName {
		return false
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || !slices.Contains(unitTypes, name[i:]) {
		return false
	}
	prefix := name[:i]
	for _, r := range prefix {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune(":-_.\\@", r)
		if !ok {
			return false
		}
	}
	at := strings.IndexByte(prefix, '@')
	switch {
	case at < 0:
		return true
	case at == 0 || at == len(prefix)-1: // "@x.service", template "x@.service"
		return false
	default:
		return !strings.Contains(prefix[at+1:], "@")
	}
}
