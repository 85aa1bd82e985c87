//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"testing"
)

// sysextdReloads counts the daemon-reloads sysextd asked PID 1 for in the
// current boot.
func (a *appliance) sysextdReloads(t *testing.T) int {
	t.Helper()
	j := a.c.MustExec(t, "journalctl", "-b", "--no-pager", "-o", "cat", "_PID=1")
	return len(regexp.MustCompile(`Reload requested from client PID \d+ \('sysextd'\)`).FindAllString(j, -1))
}

// TestBootStartsUnitsWithoutReloadUnlessOwed (docs/systemd-sysext.md): at
// boot sysextd starts the units its extensions ship without a
// daemon-reload when PID 1 holds nothing the merged images configure. An
// extension with a drop-in for a unit PID 1 loaded before the merge gets
// the reload, and that unit then runs with the drop-in. Asked of both
// booted systemds.
func TestBootStartsUnitsWithoutReloadUnlessOwed(t *testing.T) {
	requireRoot(t)
	ForEachDist(t, func(t *testing.T, base *Base) {
		a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
		a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(`[e2e-fast]
url = "https://github.com/SpamTagger/sysext-e2e-fast"

[e2e-conf]
url = "https://github.com/SpamTagger/sysext-e2e-conf"
`), 0o644)
		a.c.WriteFile(t, "/etc/sysextd/sysextd.toml", []byte(fmt.Sprintf("github_api = %q\nrandomized_delay = \"0s\"\nprobation = \"0s\"\n", a.gh.URL())), 0o644)
		// A unit of the base that PID 1 loads at boot, before any merge,
		// and starts after sysextd: it records the environment it ran with.
		a.c.WriteFile(t, "/etc/systemd/system/e2e-base.service", []byte(`[Unit]
After=sysextd.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo "FROM=$${FROM:-base}" > /run/e2e-base.out'
[Install]
WantedBy=multi-user.target
`), 0o644)
		a.c.MustExec(t, "systemctl", "enable", "e2e-base.service")
		a.publish(a.svc(t, "e2e-fast", "1", ExtOptions{}))
		a.mustCtl("install", "e2e-fast")
		a.installUnits(t, GoBuild(t, "./cmd/sysextd"))

		a.c.Reboot(t)
		if got := a.unit("ActiveState", "e2e-fast.service"); got != "active" {
			t.Errorf("e2e-fast.service is %q after boot, want active", got)
		}
		if n := a.sysextdReloads(t); n != 0 {
			t.Errorf("sysextd asked for %d daemon-reload(s) at boot, want none: PID 1 held nothing the image configures", n)
		}
		if got := a.cat("/run/e2e-base.out"); got != "FROM=base" {
			t.Errorf("e2e-base.service ran with %q, want FROM=base", got)
		}

		conf := finishImage(t, t.TempDir(), "e2e-conf", "1", ExtOptions{Dist: &a.dist, ExtraFiles: map[string]string{
			"usr/lib/systemd/system/e2e-base.service.d/50-from.conf": "[Service]\nEnvironment=FROM=extension\n",
		}})
		a.publish(conf)
		a.mustCtl("install", "e2e-conf")
		// The image starts nothing, but PID 1 holds the unit it configures:
		// the install reloads, and the unit already has the drop-in.
		if got := a.unit("Environment", "e2e-base.service"); got != "FROM=extension" {
			t.Errorf("e2e-base.service Environment %q after installing its drop-in, want FROM=extension", got)
		}
		a.c.Reboot(t)
		if got := a.cat("/run/e2e-base.out"); got != "FROM=extension" {
			t.Errorf("e2e-base.service ran with %q after a boot that merged its drop-in, want FROM=extension (sysextd owed PID 1 a reload)", got)
		}
		if n := a.sysextdReloads(t); n != 1 {
			t.Errorf("sysextd asked for %d daemon-reload(s) at boot, want 1: PID 1 held e2e-base.service, which an image configures", n)
		}
		if got := a.unit("ActiveState", "e2e-fast.service"); got != "active" {
			t.Errorf("e2e-fast.service is %q after boot, want active", got)
		}
	})
}
