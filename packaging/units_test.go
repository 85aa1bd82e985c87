package packaging

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/daemon"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// unitKeys reads a unit file's KEY=VALUE lines; repeated keys and
// space-separated lists are split into their words.
func unitKeys(t *testing.T, name string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=VALUE: %q", name, line)
		}
		keys[k] = append(keys[k], strings.Fields(v)...)
	}
	return keys
}

// TestEveryUnitIsShipped: each unit in packaging/ is in the .deb.
func TestEveryUnitIsShipped(t *testing.T) {
	nfpm, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob("sysextd*.service")
	sockets, _ := filepath.Glob("sysextd*.socket")
	for _, u := range append(units, sockets...) {
		if !bytes.Contains(nfpm, []byte("src: packaging/"+u+"\n    dst: /usr/lib/systemd/system/"+u+"\n")) {
			t.Errorf("nfpm.yaml does not install %s to /usr/lib/systemd/system", u)
		}
	}
	if !slices.Contains(units, "sysextd-boot-check.service") {
		t.Errorf("no sysextd-boot-check.service among %v", units)
	}
}

// TestBootCheckUnit: the boot check runs before every merge at boot, after
// the file systems it writes, only while the engine's marker exists, and
// is enabled with sysextd.service.
func TestBootCheckUnit(t *testing.T) {
	k := unitKeys(t, "sysextd-boot-check.service")
	want := map[string][]string{
		"ConditionPathExists": {rootfs.UnconfirmedMarker},
		"DefaultDependencies": {"no"},
		"RequiresMountsFor":   {rootfs.StateDir, rootfs.ExtensionsDir},
		"Before":              {"systemd-sysext.service", "systemd-confext.service", "sysextd.service", "sysinit.target", "shutdown.target"},
		"After":               {"local-fs.target"},
		"Type":                {"oneshot"},
		"ExecStart":           {"/usr/bin/sysextd", "-boot-check"},
		"WantedBy":            {"sysinit.target"},
	}
	for key, words := range want {
		for _, w := range words {
			if !slices.Contains(k[key], w) {
				t.Errorf("sysextd-boot-check.service: %s= lacks %s (has %v)", key, w, k[key])
			}
		}
	}
	if slices.Contains(k["Before"], "local-fs.target") || slices.Contains(k["After"], "systemd-sysext.service") {
		t.Errorf("ordering cycle: Before=%v After=%v", k["Before"], k["After"])
	}
	var help bytes.Buffer
	daemon.Main(t.Context(), []string{"-h"}, &help, "test")
	if !strings.Contains(help.String(), "-boot-check") {
		t.Errorf("sysextd has no -boot-check flag:\n%s", help.String())
	}
	s := unitKeys(t, "sysextd.service")
	if !slices.Contains(s["Also"], "sysextd-boot-check.service") {
		t.Errorf("sysextd.service: Also=%v, want the boot check enabled with it", s["Also"])
	}
	if !slices.Contains(s["After"], "sysextd-boot-check.service") {
		t.Errorf("sysextd.service: After=%v lacks the boot check", s["After"])
	}
}
