package image

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// enableableSuffixes are the unit types a package postinst enables.
var enableableSuffixes = []string{
	".service", ".socket", ".timer", ".path", ".target",
	".mount", ".automount", ".swap", ".slice",
}

// isEnableableUnitName reports whether name is a unit file name of an
// enableable type and not a template ("foo@.service").
func isEnableableUnitName(name string) bool {
	for _, s := range enableableSuffixes {
		if base, ok := strings.CutSuffix(name, s); ok {
			return base != "" && !strings.HasSuffix(base, "@")
		}
	}
	return false
}

// unitSuffixes are every unit type's file name suffix.
var unitSuffixes = append([]string{".device", ".scope"}, enableableSuffixes...)

// isUnitName reports whether name is a unit file name of any type.
func isUnitName(name string) bool {
	_, ok := unitStem(name)
	return ok
}

// unitStem returns name without its unit type suffix ("foo@" for
// "foo@.service"), and whether name has one and something before it.
func unitStem(name string) (string, bool) {
	for _, s := range unitSuffixes {
		if stem, ok := strings.CutSuffix(name, s); ok && stem != "" {
			return stem, true
		}
	}
	return "", false
}

// checkUnitLines refuses a unit file with a line systemd's config_parse()
// would refuse as too long.
func checkUnitLines(b []byte) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b)
		}
		if i > maxUnitLine {
			return fmt.Errorf("a line of %d bytes (systemd refuses lines over %d)", i, maxUnitLine)
		}
		b = b[min(i+1, len(b)):]
	}
	return nil
}

// installKeys are the [Install] settings that make "systemctl enable" do
// something.
var installKeys = map[string]bool{
	"WantedBy": true, "RequiredBy": true, "UpheldBy": true, "Alias": true, "Also": true,
}

// hasInstallTarget reports whether the unit file content has an [Install]
// section with a non-empty WantedBy=, RequiredBy=, UpheldBy=, Alias= or Also=.
func hasInstallTarget(content []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 0, 4096), maxUnitSize)
	inInstall := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			inInstall = line == "[Install]"
			continue
		}
		if !inInstall {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && installKeys[strings.TrimSpace(k)] && strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

// dependencyDirSuffixes end the directories in UnitDir that add to another
// unit: drop-ins and dependencies.
var dependencyDirSuffixes = []string{".d", ".wants", ".requires", ".upholds"}

// ManagerChanges says what merging the image changes in the service
// manager. units are the names whose configuration the image ships (unit
// files, aliases, drop-in and dependency directories): a manager that has
// loaded one of them holds it as it was until a daemon-reload. reloadOnly
// is why nothing but a daemon-reload takes the image in, whatever is
// loaded ("" when a unit load would): a generator, the manager's own
// configuration, units under /usr/local, an alias or mask, a drop-in for
// several units at once ("service.d", "foo-.service.d", "foo@.service.d").
func (info *Info) ManagerChanges() (units []string, reloadOnly string) {
	units = slices.Clone(info.UnitFiles)
	var why []string
	if len(info.ManagerDirs) > 0 {
		why = append(why, "it ships "+strings.Join(info.ManagerDirs, ", "))
	}
	if len(info.UnitLinks) > 0 {
		why = append(why, "it ships the unit symlinks "+strings.Join(info.UnitLinks, ", "))
	}
	for _, d := range info.UnitDirs {
		for _, s := range dependencyDirSuffixes {
			base, ok := strings.CutSuffix(d, s)
			if !ok {
				continue
			}
			if stem, ok := unitStem(base); !ok || strings.HasSuffix(stem, "-") || strings.HasSuffix(stem, "@") {
				why = append(why, "it ships "+UnitDir+"/"+d+", which applies to several units")
			} else {
				units = append(units, base)
			}
			break
		}
	}
	slices.Sort(units)
	return slices.Compact(units), strings.Join(why, "; ")
}
