package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/units"
)

func (u *fakeUnits) Health(_ context.Context, n string) (units.Health, error) {
	u.rec.add("health %s", n)
	if err := u.fail["health "+n]; err != nil {
		return units.Health{}, err
	}
	if h, ok := u.health[n]; ok {
		return h, nil
	}
	return units.Health{ActiveState: "active", Result: "success"}, nil
}

// probationBench is a bench with a clock the test moves and a boot ID it
// can change.
type probationBench struct {
	*bench
	now  time.Time
	boot string
}

func newProbationBench(t *testing.T) *probationBench {
	b := &probationBench{bench: newBench(t), now: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC), boot: "boot-1"}
	b.e.Now = func() time.Time { return b.now }
	b.e.Probation.BootID = func() (string, error) { return b.boot, nil }
	b.un.health = map[string]units.Health{}
	return b
}

func (b *probationBench) state() *store.State {
	b.t.Helper()
	s, err := store.Store{Root: b.e.Root}.LoadState()
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *probationBench) check() ProbationReport {
	b.t.Helper()
	rep, err := b.e.CheckProbation(context.Background(), store.HistoryByDaemon)
	if err != nil {
		b.t.Fatalf("CheckProbation: %v", err)
	}
	return rep
}

func (b *probationBench) history() []store.HistoryEntry {
	b.t.Helper()
	h, err := store.Store{Root: b.e.Root}.History("alpha")
	if err != nil {
		b.t.Fatal(err)
	}
	return h
}

// updated installs alpha 1 and updates it to 2 (a service action on
// alpha.service), which puts 2 on probation.
func (b *probationBench) updated() {
	b.t.Helper()
	b.publish("alpha", "1", "alpha.service")
	if r := b.apply(VerbInstall, "alpha"); !r.OK {
		b.t.Fatalf("install: %s", r.Error)
	}
	b.now = b.now.Add(2 * time.Minute) // the install's probation is over
	b.check()
	b.publish("alpha", "2", "alpha.service")
	if r := b.apply(VerbUpdate, "alpha"); !r.OK {
		b.t.Fatalf("update: %s", r.Error)
	}
}

func TestProbationStartsWithTheCommit(t *testing.T) {
	b := newProbationBench(t)
	b.publish("alpha", "1", "alpha.service")
	b.apply(VerbInstall, "alpha")
	p := b.state().Probation["alpha"]
	if p == nil {
		t.Fatal("a fresh install with units is not on probation")
	}
	if p.From != "" || p.To != "1" || p.Until != b.now.Add(DefaultProbation) || p.MaxRestarts != DefaultProbationRestarts || p.BootID != "boot-1" {
		t.Errorf("probation = %+v", p)
	}
	b.now = b.now.Add(2 * time.Minute)
	b.check()
	b.publish("alpha", "2", "alpha.service", "alpha-new.service")
	b.un.health["alpha.service"] = units.Health{ActiveState: "active", NRestarts: 4}
	b.apply(VerbUpdate, "alpha")
	p = b.state().Probation["alpha"]
	if p == nil || p.From != "1" || p.To != "2" || strings.Join(p.Units, " ") != "alpha-new.service alpha.service" {
		t.Fatalf("probation after the update = %+v", p)
	}
	if p.Restarts["alpha.service"] != 4 {
		t.Errorf("restart baseline = %d, want the 4 systemd counted before", p.Restarts["alpha.service"])
	}
}

func TestProbationNotForUnitlessOrWithoutSystemd(t *testing.T) {
	b := newProbationBench(t)
	b.publish("beta", "1") // no units, no action
	b.apply(VerbInstall, "beta")
	if p := b.state().Probation; len(p) != 0 {
		t.Errorf("a change that starts no unit is on probation: %+v", p)
	}
	b2 := newProbationBench(t)
	b2.e.Units = nil
	b2.publish("alpha", "1", "alpha.service")
	b2.apply(VerbInstall, "alpha")
	if p := b2.state().Probation; len(p) != 0 {
		t.Errorf("a --root run without systemd put a change on probation: %+v", p)
	}
}

func TestProbationPasses(t *testing.T) {
	b := newProbationBench(t)
	b.updated()
	until := b.state().Probation["alpha"].Until
	b.now = until.Add(-time.Second)
	if rep := b.check(); len(rep.Passed) > 0 || !rep.Next.Equal(until) {
		t.Fatalf("before the end: %+v, want nothing passed and next %s", rep, until)
	}
	b.now = until
	rep := b.check()
	if len(rep.Passed) != 1 || len(rep.Results) != 0 {
		t.Fatalf("at the end: %+v, want alpha passed", rep)
	}
	if p := b.state().Probation; p != nil {
		t.Errorf("probation left after passing: %+v", p)
	}
	h := b.history()
	if last := h[len(h)-1]; last.Verb != "probation" || last.Result != store.HistoryOK || !strings.Contains(last.Reason, "alpha.service healthy for 1m0s") {
		t.Errorf("history = %+v, want the probation passed", last)
	}
	if got := b.installed()["alpha"]; got != "2" {
		t.Errorf("installed %s, want 2", got)
	}
}

func TestProbationFailureRollsBack(t *testing.T) {
	for _, c := range []struct {
		name   string
		health units.Health
		want   string
	}{
		{"failed", units.Health{ActiveState: "failed", Result: "exit-code"}, "alpha.service failed (exit-code)"},
		{"restarts", units.Health{ActiveState: "active", NRestarts: 3}, "alpha.service restarted 3 times (more than 2)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newProbationBench(t)
			b.updated()
			b.now = b.now.Add(5 * time.Second)
			b.un.health["alpha.service"] = c.health
			rep := b.check()
			if len(rep.Results) != 1 || !rep.Results[0].OK {
				t.Fatalf("results = %+v, want one rollback", rep.Results)
			}
			if got := b.installed()["alpha"]; got != "1" {
				t.Fatalf("installed %s, want 1 back", got)
			}
			st := b.state()
			if st.Probation != nil {
				t.Errorf("probation left after the rollback: %+v", st.Probation)
			}
			r := st.Extensions["alpha"]
			if !r.Hold || !strings.Contains(r.HoldReason, c.want) || !strings.Contains(r.HoldReason, "probation of 2 failed") {
				t.Errorf("hold %v %q, want held naming %q", r.Hold, r.HoldReason, c.want)
			}
			var failedEntry, rolledBack bool
			for _, h := range b.history() {
				failedEntry = failedEntry || (h.Verb == "probation" && h.Result == store.HistoryFailed && strings.Contains(h.Error, c.want))
				rolledBack = rolledBack || (h.Verb == "probation" && h.Op == "update" && h.From == "2" && h.To == "1" && h.Result == store.HistoryOK)
			}
			if !failedEntry || !rolledBack {
				t.Errorf("history %+v: want the failure (unit and result) and the rollback", b.history())
			}
			// A held extension is not updated again to the failing version.
			if r := b.apply(VerbAuto); r.Op != OpNone {
				t.Errorf("auto after the rollback: %+v, want nothing (held)", r)
			}
		})
	}
}

func TestProbationFailedFreshInstallIsRemoved(t *testing.T) {
	b := newProbationBench(t)
	b.publish("alpha", "1", "alpha.service")
	b.apply(VerbInstall, "alpha")
	b.un.health["alpha.service"] = units.Health{ActiveState: "failed", Result: "signal"}
	rep := b.check()
	if len(rep.Results) != 1 || !rep.Results[0].OK || rep.Results[0].Op != OpRemove {
		t.Fatalf("results = %+v, want alpha removed", rep.Results)
	}
	if got := b.installed(); len(got) != 0 {
		t.Errorf("installed %v, want nothing", got)
	}
	st := b.state()
	if st.Probation != nil {
		t.Errorf("probation left: %+v", st.Probation)
	}
	// Held while not installed: auto would not install it again, an
	// operator's install would, and unhold releases it.
	w := st.Withheld["alpha"]
	if w == nil || !strings.Contains(w.Reason, "alpha.service failed (signal)") {
		t.Fatalf("withheld = %+v, want alpha held naming the unit", st.Withheld)
	}
	inv, err := b.e.inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	in := planInput{inv: inv}
	if step, held := in.withheld("alpha", false); !held || step.Op != OpNone || !strings.Contains(step.Reason, "held (") {
		t.Errorf("auto's view: %+v held %v, want held", step, held)
	}
	if _, held := in.withheld("alpha", true); held {
		t.Error("an operator's install is refused by the hold")
	}
	if err := b.e.SetHold("alpha", false, ""); err != nil {
		t.Fatalf("unhold: %v", err)
	}
	if st := b.state(); st.Withheld != nil {
		t.Errorf("unhold left %+v", st.Withheld)
	}
}

func TestWithheldClearedByInstall(t *testing.T) {
	b := newProbationBench(t)
	b.publish("alpha", "1", "alpha.service")
	b.apply(VerbInstall, "alpha")
	b.un.health["alpha.service"] = units.Health{ActiveState: "failed", Result: "signal"}
	b.check()
	delete(b.un.health, "alpha.service")
	if r := b.apply(VerbInstall, "alpha"); !r.OK {
		t.Fatalf("the operator's install: %+v", r)
	}
	if st := b.state(); st.Withheld != nil || st.Extensions["alpha"] == nil {
		t.Errorf("after the operator's install: withheld %+v", st.Withheld)
	}
}

// TestProbationReopensAfterReboot: a reboot clears the units' failures and
// counters, so a probation opened before it starts a new window.
func TestProbationReopensAfterReboot(t *testing.T) {
	b := newProbationBench(t)
	b.updated()
	b.now = b.now.Add(10 * time.Minute) // the window ended while the host was down
	b.boot = "boot-2"
	rep := b.check()
	if len(rep.Passed) != 0 || !rep.Next.Equal(b.now.Add(DefaultProbation)) {
		t.Fatalf("after a reboot: %+v, want a new window until %s", rep, b.now.Add(DefaultProbation))
	}
	if p := b.state().Probation["alpha"]; p.BootID != "boot-2" {
		t.Errorf("boot ID %q, want boot-2", p.BootID)
	}
}

// TestProbationCrashAtEveryStep crashes the failing probation's rollback
// at each of its named steps and at every call it makes to systemd, the
// store's merger and the unit manager, then starts again as the daemon
// would after a crash (Recover, then CheckProbation over the same state):
// every time, 1 is back, held, consistent, and nothing is on probation.
func TestProbationCrashAtEveryStep(t *testing.T) {
	// A dry run counts the calls the rollback makes.
	b := newProbationBench(t)
	b.updated()
	b.un.health["alpha.service"] = units.Health{ActiveState: "failed", Result: "exit-code"}
	mark := len(b.rec.calls)
	b.check()
	calls := len(b.rec.calls) - mark
	if calls < 5 {
		t.Fatalf("the rollback made %d calls: %v", calls, b.rec.calls[mark:])
	}
	var points []string
	for _, n := range []string{"probation:check:before", "probation:rollback:before", "probation:rollback:after"} {
		points = append(points, "step "+n)
	}
	for i := 1; i <= calls; i++ {
		points = append(points, fmt.Sprintf("call %d (%s)", i, b.rec.calls[mark+i-1]))
	}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			b := newProbationBench(t)
			b.updated()
			b.un.health["alpha.service"] = units.Health{ActiveState: "failed", Result: "exit-code"}
			crashed := b.crashDuring(point)
			if !crashed {
				t.Fatalf("never reached %s", point)
			}
			// The next owner: Recover, then the probation again.
			if _, err := b.e.Recover(context.Background()); err != nil {
				t.Fatalf("Recover: %v", err)
			}
			b.check()
			if got := b.installed()["alpha"]; got != "1" {
				t.Fatalf("installed %s, want 1", got)
			}
			st := b.state()
			if st.Probation != nil || !st.Extensions["alpha"].Hold {
				t.Errorf("probation %+v, hold %v: want none and held", st.Probation, st.Extensions["alpha"].Hold)
			}
		})
	}
	t.Logf("%d crash points, each recovered to 1, held", len(points))
}

type crash struct{ at string }

// crashDuring runs CheckProbation and stops it dead at point ("step NAME"
// or "call N (...)"), as a kill would; it reports whether it got there.
func (b *probationBench) crashDuring(point string) (crashed bool) {
	return b.crashIn(point, func() { _, _ = b.e.CheckProbation(context.Background(), store.HistoryByDaemon) })
}

// crashIn runs fn and stops it dead at point.
func (b *probationBench) crashIn(point string, fn func()) (crashed bool) {
	mark := len(b.rec.calls)
	var n int
	stepName, isStep := strings.CutPrefix(point, "step ")
	if !isStep {
		fmt.Sscanf(point, "call %d", &n)
	}
	crashHook = func(name string) {
		if isStep && name == stepName {
			panic(crash{point})
		}
	}
	b.rec.onCall = func(c int) {
		if !isStep && c-mark == n {
			panic(crash{point})
		}
	}
	defer func() {
		crashHook, b.rec.onCall = nil, nil
		if r := recover(); r != nil {
			if _, ok := r.(crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	fn()
	return false
}

func TestProbationDue(t *testing.T) {
	b := newProbationBench(t)
	if due, any, err := b.e.ProbationDue(context.Background()); due || any || err != nil {
		t.Fatalf("nothing installed: due %v any %v err %v", due, any, err)
	}
	b.updated()
	b.now = b.now.Add(time.Second)
	if due, any, _ := b.e.ProbationDue(context.Background()); due || !any {
		t.Errorf("healthy, in the window: due %v any %v, want false true", due, any)
	}
	b.un.health["alpha.service"] = units.Health{ActiveState: "active", NRestarts: 3}
	if due, _, _ := b.e.ProbationDue(context.Background()); !due {
		t.Error("3 restarts: not due")
	}
	b.un.health["alpha.service"] = units.Health{ActiveState: "active"}
	b.now = b.now.Add(time.Hour)
	if due, _, _ := b.e.ProbationDue(context.Background()); !due {
		t.Error("window over: not due")
	}
}
