package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/store"
)

// rebootUpdated installs alpha 1 and updates it to 2 with the reboot
// update action, which leaves 2 awaiting a boot.
func (b *probationBench) rebootUpdated() {
	b.t.Helper()
	b.publish("alpha", "1", "alpha.service")
	b.apply(VerbInstall, "alpha")
	b.now = b.now.Add(2 * time.Minute)
	b.check()
	b.e.Manifests.Get("alpha").Update = "reboot"
	b.publish("alpha", "2", "alpha.service")
	if r := b.apply(VerbUpdate, "alpha"); !r.OK || r.Action != "reboot" {
		b.t.Fatalf("update: %+v", r)
	}
}

// start is what sysextd does at each start before it merges: count, recover,
// undo what ran out of tries.
func (b *probationBench) start() []Result {
	b.t.Helper()
	if _, err := b.e.CountBoot(); err != nil {
		b.t.Fatalf("CountBoot: %v", err)
	}
	if _, err := b.e.Recover(context.Background()); err != nil {
		b.t.Fatalf("Recover: %v", err)
	}
	return b.e.UndoUnconfirmed(context.Background(), store.HistoryByDaemon)
}

func TestBootConfirmsARebootChange(t *testing.T) {
	b := newProbationBench(t)
	b.rebootUpdated()
	p := b.state().Probation["alpha"]
	if p == nil || !p.AwaitBoot || p.From != "1" || p.To != "2" {
		t.Fatalf("after a reboot-action update: %+v, want 2 awaiting a boot", p)
	}
	// In the same boot nothing is due, whatever the clock says.
	b.now = b.now.Add(time.Hour)
	if due, any, _ := b.e.ProbationDue(context.Background()); due || !any {
		t.Errorf("same boot: due %v any %v", due, any)
	}
	if rep := b.check(); len(rep.Passed)+len(rep.Results) > 0 {
		t.Errorf("same boot: %+v, want nothing settled", rep)
	}
	// The next boot counts one try, opens the window, and confirms it once
	// the units were healthy for it.
	b.boot = "boot-2"
	if rs := b.start(); len(rs) != 0 {
		t.Fatalf("first boot undid: %+v", rs)
	}
	if p := b.state().Probation["alpha"]; p.Tries != 1 {
		t.Errorf("tries = %d, want 1", p.Tries)
	}
	b.check()
	if p := b.state().Probation["alpha"]; p.AwaitBoot || !p.Until.Equal(b.now.Add(DefaultProbation)) {
		t.Errorf("window not opened in the new boot: %+v", p)
	}
	b.now = b.now.Add(DefaultProbation)
	if rep := b.check(); len(rep.Passed) != 1 {
		t.Fatalf("%+v, want confirmed", rep)
	}
	if b.state().Probation != nil || b.installed()["alpha"] != "2" {
		t.Errorf("not confirmed on 2: %+v", b.state().Probation)
	}
}

// TestBootUndoesAfterThreeUnconfirmedBoots: each boot dies before the
// window ends (FailureAction=reboot-force); the fourth start puts 1 back,
// offline, before anything is merged, and holds alpha.
func TestBootUndoesAfterThreeUnconfirmedBoots(t *testing.T) {
	b := newProbationBench(t)
	b.rebootUpdated()
	b.e.Source = nil // GitHub is down: anything reaching for a source would panic
	for boot := 2; boot <= 4; boot++ {
		b.boot = fmt.Sprintf("boot-%d", boot)
		if rs := b.start(); len(rs) != 0 {
			t.Fatalf("boot %d undid already: %+v", boot, rs)
		}
		b.check() // the window opens; the host dies before it ends
		b.now = b.now.Add(20 * time.Second)
	}
	b.boot = "boot-5"
	rs := b.start()
	if len(rs) != 1 || !rs[0].OK {
		t.Fatalf("fourth start: %+v, want alpha rolled back", rs)
	}
	if got := b.installed()["alpha"]; got != "1" {
		t.Fatalf("installed %s, want 1", got)
	}
	st := b.state()
	if st.Probation != nil || !st.Extensions["alpha"].Hold || !strings.Contains(st.Extensions["alpha"].HoldReason, "not confirmed after 4 starts") {
		t.Errorf("probation %+v, record %+v", st.Probation, st.Extensions["alpha"])
	}
}

// TestBootCountsACrashLoop: sysextd restarting again and again in one boot
// counts too.
func TestBootCountsACrashLoop(t *testing.T) {
	b := newProbationBench(t)
	b.rebootUpdated()
	b.boot = "boot-2"
	for i := 1; i <= 3; i++ {
		if rs := b.start(); len(rs) != 0 {
			t.Fatalf("start %d undid: %+v", i, rs)
		}
		b.check()
	}
	if rs := b.start(); len(rs) != 1 || !rs[0].OK || b.installed()["alpha"] != "1" {
		t.Fatalf("fourth start in a crash loop: %+v, installed %v", rs, b.installed())
	}
}

// TestBootDoesNotCountAChangeOfThisBoot: a sysextd start in the boot the
// change was made in (an upgrade of sysextd itself) counts nothing.
func TestBootDoesNotCountAChangeOfThisBoot(t *testing.T) {
	b := newProbationBench(t)
	b.updated()
	if tries, err := b.e.CountBoot(); err != nil || len(tries) != 0 {
		t.Errorf("CountBoot in the change's boot: %v %v", tries, err)
	}
}

// TestBootCrashAtEveryStep kills the fourth start at each step of the
// count and the undo, then starts again: 1 comes back, held, every time.
func TestBootCrashAtEveryStep(t *testing.T) {
	prepare := func(t *testing.T) *probationBench {
		b := newProbationBench(t)
		b.rebootUpdated()
		for boot := 2; boot <= 4; boot++ {
			b.boot = fmt.Sprintf("boot-%d", boot)
			b.start()
		}
		b.boot = "boot-5"
		return b
	}
	b := prepare(t)
	mark := len(b.rec.calls)
	b.start()
	calls := len(b.rec.calls) - mark
	points := []string{"step boot:count:before", "step boot:count:after", "step probation:rollback:before", "step probation:rollback:after"}
	for i := 1; i <= calls; i++ {
		points = append(points, fmt.Sprintf("call %d (%s)", i, b.rec.calls[mark+i-1]))
	}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			b := prepare(t)
			if !b.crashIn(point, func() { b.start() }) {
				t.Fatalf("never reached %s", point)
			}
			b.start() // systemd starts sysextd again
			if got := b.installed()["alpha"]; got != "1" {
				t.Fatalf("installed %s, want 1", got)
			}
			if st := b.state(); st.Probation != nil || !st.Extensions["alpha"].Hold {
				t.Errorf("probation %+v, held %v", st.Probation, st.Extensions["alpha"].Hold)
			}
		})
	}
	t.Logf("%d crash points", len(points))
}
