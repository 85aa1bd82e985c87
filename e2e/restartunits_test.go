//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/merge"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// TestSysextRestartsUnits asks each booted systemd whether it restarts the
// units of EXTENSION_RESTART_UNITS= itself (systemd#42368): a service from an
// extension runs v1, the image is replaced by v2 and `systemd-sysext refresh`
// runs, nothing else. merge.RestartsUnitsItself, given the version
// merge.SystemdVersion reads from the base, must predict what happens: on
// forky (262) the service is restarted and runs v2; on trixie (257) it keeps
// running v1.
func TestSysextRestartsUnits(t *testing.T) {
	requireRoot(t)
	ForEachDist(t, func(t *testing.T, base *Base) {
		version, err := merge.SystemdVersion(t.Context(), rootfs.New(base.Dir))
		if err != nil {
			t.Fatal(err)
		}
		c := Boot(t, BootOptions{Base: base})
		if got, _ := merge.ParseVersionOutput(c.MustExec(t, "systemd-sysext", "--version")); got != version {
			t.Errorf("SystemdVersion of the base = %d, systemd-sysext --version inside = %d", version, got)
		}
		opts := func() ExtOptions {
			return ExtOptions{Dist: &base.Dist, Release: map[string]string{"EXTENSION_RESTART_UNITS": "e2e-rs.service"}}
		}
		c.AddExtension(t, BuildServiceExtension(t, "e2e-rs", "1", opts()))
		c.MustExec(t, "systemd-sysext", "refresh")
		c.MustExec(t, "systemctl", "daemon-reload")
		c.MustExec(t, "systemctl", "start", "e2e-rs.service")
		c.WaitExec(t, 10*time.Second, "grep", "-qx", "1", "/run/e2e-rs/started-version")
		inv := strings.TrimSpace(c.MustExec(t, "systemctl", "show", "-p", "InvocationID", "--value", "e2e-rs.service"))

		c.AddExtension(t, BuildServiceExtension(t, "e2e-rs", "2", opts()))
		c.MustExec(t, "systemd-sysext", "refresh")
		if got := strings.TrimSpace(c.MustExec(t, "cat", "/usr/lib/e2e-rs/version")); got != "2" {
			t.Fatalf("merged version %q after refresh, want 2", got)
		}
		time.Sleep(2 * time.Second) // a restart systemd queued has time to run
		after := strings.TrimSpace(c.MustExec(t, "systemctl", "show", "-p", "InvocationID", "--value", "e2e-rs.service"))
		started := strings.TrimSpace(c.MustExec(t, "cat", "/run/e2e-rs/started-version"))
		restarted := after != inv && started == "2"
		t.Logf("systemd %d: after refresh InvocationID %s -> %s, running version %s: restarted by systemd-sysext = %v",
			version, inv, after, started, restarted)
		if want := merge.RestartsUnitsItself(version); restarted != want {
			t.Errorf("systemd %d restarted the unit itself: %v; merge.RestartsUnitsItself(%d) = %v", version, restarted, version, want)
		}
	})
}
