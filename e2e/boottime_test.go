//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBootTimeBench is bench/boot.sh (docs/PERFORMANCE.md, "Boot"): on a
// booted trixie with 12 installed images, 4 of them shipping a unit, it
// alternates SYSEXTD_BENCH_BOOTS times (a) a boot where only
// systemd-sysext.service merges (sysextd disabled), timed from the unit's
// start to active, and (b) a boot where sysextd merges (systemd-sysext.service
// disabled), timed from sysextd.service's start to READY, which is sent once
// the images are merged and their units started. It reports each pair and
// the ratio b/a. Skipped unless SYSEXTD_BENCH_BOOTS is set.
func TestBootTimeBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SYSEXTD_BENCH_BOOTS"))
	if n <= 0 {
		t.Skip("set SYSEXTD_BENCH_BOOTS=N (bench/boot.sh) to run the boot-time bench")
	}
	requireRoot(t)
	base := EnsureBase(t)
	a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
	var manifest strings.Builder
	for i := range 12 {
		name := fmt.Sprintf("bench-%02d", i)
		fmt.Fprintf(&manifest, "[%s]\nurl = \"https://github.com/SpamTagger/sysext-%s\"\n\n", name, name)
		var b *Built
		if i < 4 {
			b = a.svc(t, name, "1", ExtOptions{}) // ships NAME.service
		} else {
			b = finishImage(t, t.TempDir(), name, "1", ExtOptions{Dist: &a.dist, ExtraFiles: map[string]string{
				"usr/lib/" + name + "/version": "1\n", "usr/share/doc/" + name + "/README": strings.Repeat("bench\n", 2000),
			}})
		}
		a.publish(b)
	}
	a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(manifest.String()), 0o644)
	a.c.WriteFile(t, "/etc/sysextd/sysextd.toml", []byte(fmt.Sprintf("github_api = %q\ninterval = \"24h\"\nrandomized_delay = \"0s\"\nprobation = \"0s\"\n", a.gh.URL())), 0o644)
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("bench-%02d", i))
	}
	a.mustCtl(append([]string{"install"}, names...)...)
	a.installUnits(t, GoBuild(t, "./cmd/sysextd"))
	a.gh.Close() // READY never waits for the network; the first check after it fails fast

	span := func(unit string) time.Duration {
		t.Helper()
		from := a.monotonic("InactiveExitTimestampMonotonic", unit)
		to := a.monotonic("ActiveEnterTimestampMonotonic", unit)
		if from == 0 || to < from {
			t.Fatalf("%s: start %d µs, active %d µs", unit, from, to)
		}
		return time.Duration(to-from) * time.Microsecond
	}
	var sysext, sysextd []time.Duration
	for i := range n {
		a.c.MustExec(t, "systemctl", "disable", "sysextd.service")
		a.c.MustExec(t, "systemctl", "enable", "systemd-sysext.service")
		a.c.Reboot(t)
		if got := a.cat("/usr/lib/bench-11/version"); got != "1" {
			t.Fatalf("systemd-sysext.service did not merge: %q", got)
		}
		sysext = append(sysext, span("systemd-sysext.service"))

		a.c.MustExec(t, "systemctl", "disable", "systemd-sysext.service")
		a.c.MustExec(t, "systemctl", "enable", "sysextd.service")
		a.c.Reboot(t)
		if got := a.cat("/usr/lib/bench-11/version"); got != "1" {
			t.Fatalf("sysextd did not merge: %q", got)
		}
		for j := range 4 {
			if got := a.unit("ActiveState", fmt.Sprintf("bench-%02d.service", j)); got != "active" {
				t.Errorf("bench-%02d.service is %q at READY, want active", j, got)
			}
		}
		if got := a.unit("ConditionResult", "sysextd-boot-check.service"); got != "no" {
			t.Errorf("sysextd-boot-check.service ConditionResult %q on a normal boot, want no (skipped)", got)
		}
		sysextd = append(sysextd, span("sysextd.service"))
		t.Logf("MEASURED pair %d: systemd-sysext.service %s, sysextd.service to READY %s, ratio %.2f", i+1,
			sysext[i].Round(time.Millisecond), sysextd[i].Round(time.Millisecond), float64(sysextd[i])/float64(sysext[i]))
	}
	// Where sysextd's time goes in the last boot (PID 1's own lines for
	// the reload included), for the next engineer.
	j, _, _ := a.c.Exec(t, "journalctl", "-b", "-o", "short-monotonic", "--no-pager", "_PID=1", "+", "_SYSTEMD_UNIT=sysextd.service")
	t.Logf("journal of the last sysextd boot:\n%s", tail(j, 60))
	var ratios []float64
	for i := range n {
		ratios = append(ratios, float64(sysextd[i])/float64(sysext[i]))
	}
	med := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	slices.Sort(ratios)
	t.Logf("MEASURED %d boots each: systemd-sysext.service median %s (%s–%s), sysextd.service to READY median %s (%s–%s); ratio of medians %.2f, pairs %.2f–%.2f",
		n, med(sysext).Round(time.Millisecond), slices.Min(sysext).Round(time.Millisecond), slices.Max(sysext).Round(time.Millisecond),
		med(sysextd).Round(time.Millisecond), slices.Min(sysextd).Round(time.Millisecond), slices.Max(sysextd).Round(time.Millisecond),
		float64(med(sysextd))/float64(med(sysext)), ratios[0], ratios[len(ratios)-1])
}
