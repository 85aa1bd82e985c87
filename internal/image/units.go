package image

import (
	"bufio"
	"bytes"
	"fmt"
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
	for _, s := range unitSuffixes {
		if base, ok := strings.CutSuffix(name, s); ok && base != "" {
			return true
		}
	}
	return false
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
