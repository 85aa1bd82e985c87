package engine

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
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

// bootCheck is what sysextd-boot-check.service does before the merge
// (daemon.BootCheck): no merger and no service manager, BeforeMerge set.
func (b *probationBench) bootCheck() []Result {
	b.t.Helper()
	bc := *b.e
	bc.Sysext, bc.Units, bc.BeforeMerge = nil, nil, true
	if _, err := bc.CountBootBeforeMerge(); err != nil {
		b.t.Fatalf("CountBootBeforeMerge: %v", err)
	}
	if _, err := bc.Recover(context.Background()); err != nil {
		b.t.Fatalf("Recover: %v", err)
	}
	return bc.UndoUnconfirmed(context.Background(), store.HistoryByDaemon)
}

// marked reports whether the unconfirmed marker exists.
func (b *probationBench) marked() bool { return store.Store{Root: b.e.Root}.UnconfirmedMarked() }

// TestBootCheckUndoesBeforeTheMerge: the boot check counts each boot
// before anything is merged, the daemon's start in the same boot counts
// nothing more, and the fourth boot gets 1 back from the boot check alone:
// no refresh, no unit call, no source, held with the reason.
func TestBootCheckUndoesBeforeTheMerge(t *testing.T) {
	b := newProbationBench(t)
	b.rebootUpdated()
	if !b.marked() {
		t.Fatal("no unconfirmed marker while 2 awaits a boot")
	}
	b.e.Source = nil // GitHub is down
	for boot := 2; boot <= 4; boot++ {
		b.boot = fmt.Sprintf("boot-%d", boot)
		if rs := b.bootCheck(); len(rs) != 0 {
			t.Fatalf("boot %d: the boot check undid already: %+v", boot, rs)
		}
		st := b.state()
		if p := st.Probation["alpha"]; p.Tries != boot-1 || st.CountedBoot != b.boot {
			t.Fatalf("boot %d after the check: tries %d, counted_boot %q", boot, p.Tries, st.CountedBoot)
		}
		if rs := b.start(); len(rs) != 0 {
			t.Fatalf("boot %d: the daemon undid: %+v", boot, rs)
		}
		st = b.state()
		if p := st.Probation["alpha"]; p.Tries != boot-1 || st.CountedBoot != "" {
			t.Fatalf("boot %d after the daemon's start: tries %d (counted twice?), counted_boot %q", boot, p.Tries, st.CountedBoot)
		}
		b.check() // the window opens; the host dies before it ends
		b.now = b.now.Add(20 * time.Second)
	}
	b.boot = "boot-5"
	mark := len(b.rec.calls)
	rs := b.bootCheck()
	if len(rs) != 1 || !rs[0].OK {
		t.Fatalf("fourth boot's check: %+v, want alpha rolled back", rs)
	}
	if calls := b.rec.calls[mark:]; len(calls) != 0 {
		t.Errorf("the boot check called the merger or the units: %v", calls)
	}
	if got := b.installed()["alpha"]; got != "1" {
		t.Fatalf("installed %s before the merge, want 1", got)
	}
	st := b.state()
	r := st.Extensions["alpha"]
	if st.Probation != nil || st.Pending != nil || !r.Hold || !strings.Contains(r.HoldReason, "not confirmed after 4 starts") {
		t.Errorf("probation %+v, pending %+v, record %+v", st.Probation, st.Pending, r)
	}
	if b.marked() {
		t.Error("the unconfirmed marker outlived the probation")
	}
	h := b.history()
	if last := h[len(h)-1]; last.Verb != "probation" || last.To != "1" || last.Result != store.HistoryOK {
		t.Errorf("last history entry %+v, want the rollback to 1", last)
	}
	// The daemon then merges 1 and starts its unit; nothing is counted.
	if rs := b.start(); len(rs) != 0 {
		t.Errorf("the daemon after the undo: %+v", rs)
	}
}

// TestBootCheckThenACrashLoopCounts: after the boot check counted the
// boot, the daemon's first start counts nothing, each later start in the
// same boot counts one try, and the fourth try undoes (the daemon's path).
func TestBootCheckThenACrashLoopCounts(t *testing.T) {
	b := newProbationBench(t)
	b.rebootUpdated()
	b.boot = "boot-2"
	b.bootCheck()
	for want := 1; want <= 3; want++ {
		if rs := b.start(); len(rs) != 0 {
			t.Fatalf("start with tries %d undid: %+v", want, rs)
		}
		if got := b.state().Probation["alpha"].Tries; got != want {
			t.Fatalf("tries %d, want %d", got, want)
		}
		b.check()
	}
	if rs := b.start(); len(rs) != 1 || !rs[0].OK || b.installed()["alpha"] != "1" {
		t.Fatalf("fourth try in a crash loop: %+v, installed %v", rs, b.installed())
	}
}

// TestBootCheckRunsOncePerBoot: the unit started twice in one boot counts
// once; a boot check with nothing unconfirmed removes a stale marker and
// writes nothing else.
func TestBootCheckRunsOncePerBoot(t *testing.T) {
	b := newProbationBench(t)
	b.rebootUpdated()
	b.boot = "boot-2"
	b.bootCheck()
	b.bootCheck()
	if got := b.state().Probation["alpha"].Tries; got != 1 {
		t.Errorf("two checks in one boot: tries %d, want 1", got)
	}
	b.start()
	b.check()
	b.now = b.now.Add(DefaultProbation)
	if rep := b.check(); len(rep.Passed) != 1 {
		t.Fatalf("%+v, want confirmed", rep)
	}
	if b.marked() {
		t.Fatal("the marker outlived the confirmation")
	}
	// A marker left by a crash between the state and its removal.
	if err := b.e.Root.WriteFile(rootfs.UnconfirmedMarker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	statePath := store.Store{Root: b.e.Root}.StatePath()
	before, _ := os.ReadFile(statePath)
	b.boot = "boot-3"
	b.bootCheck()
	if b.marked() {
		t.Error("a stale marker survived the boot check")
	}
	if after, _ := os.ReadFile(statePath); string(after) != string(before) {
		t.Errorf("the state changed with nothing unconfirmed:\n%s\n->\n%s", before, after)
	}
}

// TestBootCheckCrashAtEveryStep kills the fourth boot's check at each of
// its steps (the count, the undo's history, every phase of the rollback's
// transaction, its commit), then goes on both ways the host can: the
// merge and the daemon's start in the same boot, or another boot and its
// check. Both converge on 1, held, nothing pending, nothing on probation.
func TestBootCheckCrashAtEveryStep(t *testing.T) {
	prepare := func(t *testing.T) *probationBench {
		b := newProbationBench(t)
		b.rebootUpdated()
		b.e.Source = nil
		for boot := 2; boot <= 4; boot++ {
			b.boot = fmt.Sprintf("boot-%d", boot)
			b.bootCheck()
			b.start()
		}
		b.boot = "boot-5"
		return b
	}
	var steps []string
	b := prepare(t)
	crashHook = func(name string) { steps = append(steps, name) }
	b.bootCheck()
	crashHook = nil
	if len(steps) < 6 {
		t.Fatalf("the boot check passed only %v", steps)
	}
	then := map[string]func(b *probationBench){
		"daemon": func(b *probationBench) {
			b.mg.Refresh(context.Background()) // systemd-sysext.service merges what is there
			b.start()
		},
		"reboot": func(b *probationBench) {
			b.boot = "boot-6"
			b.bootCheck()
			b.start()
		},
	}
	n := 0
	for _, step := range steps {
		for _, next := range []string{"daemon", "reboot"} {
			t.Run(step+" then "+next, func(t *testing.T) {
				b := prepare(t)
				if !b.crashIn("step "+step, func() { b.bootCheck() }) {
					t.Fatalf("never reached %s", step)
				}
				then[next](b)
				if got := b.installed()["alpha"]; got != "1" {
					t.Fatalf("installed %s, want 1", got)
				}
				st := b.state()
				if st.Probation != nil || st.Pending != nil || !st.Extensions["alpha"].Hold {
					t.Errorf("probation %+v, pending %+v, held %v", st.Probation, st.Pending, st.Extensions["alpha"].Hold)
				}
				if b.marked() {
					t.Error("the unconfirmed marker outlived the probation")
				}
			})
			n++
		}
	}
	t.Logf("%d crash points × 2 continuations = %d cases: %v", len(steps), n, steps)
}
