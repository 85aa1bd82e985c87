//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// installUnits installs sysextd as the .deb does: the binary as
// /usr/bin/sysextd, the packaged units (sysextd.service, sysextd.socket,
// sysextd-boot-check.service) in /usr/lib/systemd/system, and enables
// sysextd.service, whose Also= enables the other two.
func (a *appliance) installUnits(t *testing.T, sysextd string) {
	t.Helper()
	gomod := strings.TrimSpace(mustRun(t, t.Context(), "go", "env", "GOMOD"))
	pkg := filepath.Join(filepath.Dir(gomod), "packaging")
	a.c.CopyIn(t, sysextd, "/usr/bin/sysextd", 0o755)
	for _, u := range []string{"sysextd.service", "sysextd.socket", "sysextd-boot-check.service"} {
		a.c.CopyIn(t, filepath.Join(pkg, u), "/usr/lib/systemd/system/"+u, 0o644)
	}
	a.c.MustExec(t, "systemctl", "daemon-reload")
	a.c.MustExec(t, "systemctl", "enable", "sysextd.service")
	if got := a.unit("UnitFileState", "sysextd-boot-check.service"); got != "enabled" {
		t.Fatalf("sysextd-boot-check.service is %q after enabling sysextd.service, want enabled by its Also=", got)
	}
}

// monotonic reads a unit's *TimestampMonotonic property, in µs.
func (a *appliance) monotonic(prop, unit string) int64 {
	a.t.Helper()
	v, err := strconv.ParseInt(a.unit(prop, unit), 10, 64)
	if err != nil {
		a.t.Fatalf("%s of %s: %v", prop, unit, err)
	}
	return v
}

// TestBootAssessmentUndoesABootThatRebootsItself (issue 22): an update with
// the reboot action ships a unit that fails at once with
// FailureAction=reboot-force, so every boot on it ends in a reboot the
// host does by itself, before the boot finishes. GitHub is down. Each boot
// is counted before systemd-sysext.service merges; after three such boots
// sysextd-boot-check.service puts the previous image back, offline, before
// the merge, and holds the extension; the appliance then boots and stays
// up on the previous version, and the check does not run on the next boot.
func TestBootAssessmentUndoesABootThatRebootsItself(t *testing.T) {
	requireRoot(t)
	ctl, sysextd := GoBuild(t, "./cmd/sysextctl"), GoBuild(t, "./cmd/sysextd")
	ForEachDist(t, func(t *testing.T, base *Base) {
		a := newApplianceWith(t, BootOptions{Base: base, FollowReboots: true}, ctl)
		a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(`[e2e-rb]
url = "https://github.com/SpamTagger/sysext-e2e-rb"
update = "reboot"
`), 0o644)
		a.c.WriteFile(t, "/etc/sysextd/sysextd.toml", []byte(fmt.Sprintf("github_api = %q\ninterval = \"24h\"\nrandomized_delay = \"0s\"\nprobation = \"20s\"\n", a.gh.URL())), 0o644)
		a.installUnits(t, sysextd)
		// systemd-sysext.service merges at boot, as on a stock appliance.
		a.c.MustExec(t, "systemctl", "enable", "systemd-sysext.service")

		a.publish(a.svc(t, "e2e-rb", "1", ExtOptions{Update: "reboot"}))
		a.mustCtl("install", "e2e-rb")
		a.c.WaitExec(t, 10*time.Second, "grep", "-qx", "1", "/run/e2e-rb/started-version")
		// Type=oneshot: the start job sysextd waits for (before READY, so
		// before the boot can finish) fails, and the host goes down.
		failing := "[Unit]\nDescription=e2e-rb 2: fails at once and takes the host down\nFailureAction=reboot-force\n" +
			"[Service]\nType=oneshot\nExecStart=/bin/sh -c 'mkdir -p /run/e2e-rb; echo 2 > /run/e2e-rb/started-version; exit 3'\n" +
			"[Install]\nWantedBy=multi-user.target\n"
		a.publish(a.svc(t, "e2e-rb", "2", ExtOptions{Update: "reboot", ExtraFiles: map[string]string{
			"usr/lib/systemd/system/e2e-rb.service": failing,
		}}))
		if out := a.mustCtl("update", "e2e-rb"); !strings.Contains(out, "updated from 1 to 2") {
			t.Fatalf("update output %q", out)
		}
		st := readBootState(a)
		if p := st.Probation["e2e-rb"]; p.To != "2" || !p.AwaitBoot || !a.exists("/var/lib/sysextd/unconfirmed") {
			t.Fatalf("after the update: %+v, marker %v; want 2 awaiting a boot, marked", st.Probation, a.exists("/var/lib/sysextd/unconfirmed"))
		}
		a.gh.Close() // GitHub is down from here on

		// The operator's reboot for the update. From here on the host
		// reboots by itself until a boot finishes.
		begin := time.Now()
		a.c.Reboot(t)
		took := time.Since(begin)
		boots := a.c.SelfReboots()
		t.Logf("MEASURED %d boots on 2 ended in a reboot of their own; the next boot, on 1, finished %s after the operator's reboot",
			boots, took.Round(100*time.Millisecond))
		if boots != 3 {
			t.Errorf("%d boots rebooted by themselves, want 3 (boot_tries = 3)", boots)
		}
		if got := a.cat("/usr/lib/e2e-rb/version"); got != "1" {
			t.Fatalf("merged %q after the self reboots, want 1 back", got)
		}
		// Put back before the merge: the check ended before
		// systemd-sysext.service started, and said why.
		checkEnd := a.monotonic("ExecMainExitTimestampMonotonic", "sysextd-boot-check.service")
		mergeStart := a.monotonic("ExecMainStartTimestampMonotonic", "systemd-sysext.service")
		if checkEnd == 0 || mergeStart == 0 || checkEnd > mergeStart {
			t.Errorf("boot check ended at %d µs, systemd-sysext.service started at %d µs: want the check first", checkEnd, mergeStart)
		}
		if got := a.unit("Result", "sysextd-boot-check.service"); got != "success" {
			t.Errorf("sysextd-boot-check.service result %q", got)
		}
		if j := a.c.Journal(t, "sysextd-boot-check.service"); !strings.Contains(j, "2 was not confirmed after 4 starts") {
			t.Errorf("the boot check's journal lacks the undo:\n%s", tail(j, 40))
		}
		a.c.WaitExec(t, 30*time.Second, "grep", "-qx", "1", "/run/e2e-rb/started-version")
		if got := a.unit("ActiveState", "e2e-rb.service"); got != "active" {
			t.Errorf("e2e-rb.service is %q on 1, want active", got)
		}
		st = readBootState(a)
		r := st.Extensions["e2e-rb"]
		if r.Version != "1" || !r.Hold || !strings.Contains(r.HoldReason, "not confirmed after 4 starts") || len(st.Probation) != 0 {
			t.Errorf("state: %+v, probation %+v; want 1 held with the reason, nothing on probation", r, st.Probation)
		}
		if a.exists("/var/lib/sysextd/unconfirmed") {
			t.Error("the unconfirmed marker outlived the undo")
		}
		if hist := a.mustCtl("history", "e2e-rb"); !strings.Contains(hist, "not confirmed after 4 starts") {
			t.Errorf("history lacks the undo:\n%s", hist)
		}
		if state, _, _ := a.c.Exec(t, "systemctl", "is-system-running"); strings.TrimSpace(state) != "running" {
			failed, _, _ := a.c.Exec(t, "systemctl", "--failed", "--no-legend", "--plain")
			t.Errorf("system is %q on 1, want running; failed units:\n%s", strings.TrimSpace(state), failed)
		}

		// It stays up on 1, and a normal boot skips the check.
		if a.c.WaitSelfReboot(t, 15*time.Second) {
			t.Fatal("the host rebooted by itself on 1")
		}
		a.c.Reboot(t)
		if got := a.c.SelfReboots(); got != boots {
			t.Errorf("self reboots %d after one more boot, want still %d", got, boots)
		}
		if got := a.cat("/usr/lib/e2e-rb/version"); got != "1" {
			t.Errorf("after one more boot: merged %q, want 1", got)
		}
		if got := a.unit("ConditionResult", "sysextd-boot-check.service"); got != "no" {
			t.Errorf("sysextd-boot-check.service ConditionResult %q on a boot with nothing unconfirmed, want no (skipped)", got)
		}
		if state, _, _ := a.c.Exec(t, "systemctl", "is-system-running"); strings.TrimSpace(state) != "running" {
			t.Errorf("system is %q after one more boot, want running", strings.TrimSpace(state))
		}
	})
}

type bootState struct {
	Extensions map[string]struct {
		Version    string `json:"version"`
		Hold       bool   `json:"hold"`
		HoldReason string `json:"hold_reason"`
	} `json:"extensions"`
	Probation map[string]struct {
		To        string `json:"to"`
		AwaitBoot bool   `json:"await_boot"`
		Tries     int    `json:"tries"`
	} `json:"probation"`
	CountedBoot string `json:"counted_boot"`
}

func readBootState(a *appliance) bootState {
	a.t.Helper()
	var st bootState
	if err := json.Unmarshal([]byte(a.cat("/var/lib/sysextd/state.json")), &st); err != nil {
		a.t.Fatal(err)
	}
	return st
}
