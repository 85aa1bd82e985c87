package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

func TestHoldAndPin(t *testing.T) {
	b := newBench(t)
	b.publish("alpha", "1")
	b.apply(VerbInstall, "alpha")
	b.publish("alpha", "2")
	if err := b.e.SetHold("alpha", true, "held by the operator"); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{VerbUpdate, VerbAuto} {
		r := b.apply(verb)
		if r.Op != OpNone || !strings.Contains(r.Message, "held") {
			t.Errorf("%s while held: %+v", verb, r)
		}
	}
	if got := b.installed()["alpha"]; got != "1" {
		t.Fatalf("held alpha changed to %s", got)
	}
	b.e.SetHold("alpha", false, "")
	b.e.SetPin("alpha", "1")
	if r := b.apply(VerbUpdate); r.Op != OpNone || !strings.Contains(r.Message, "pinned to 1") {
		t.Errorf("update while pinned to the installed version: %+v", r)
	}
	b.e.SetPin("alpha", "3")
	p, err := b.e.MakePlan(context.Background(), VerbUpdate, nil)
	if err != nil || len(p.Failures) != 1 || !strings.Contains(p.Failures[0].Error, "pinned to 3, but the release found is 2") {
		t.Fatalf("plan with a pin no release matches: %+v, %v", p, err)
	}
	b.e.SetPin("alpha", "2")
	if r := b.apply(VerbUpdate); !r.OK || r.Op != OpUpdate {
		t.Fatalf("update to the pinned release: %+v", r)
	}
	st, _ := store.Store{Root: b.e.Root}.LoadState()
	if r := st.Extensions["alpha"]; r.Version != "2" || r.Pin != "2" {
		t.Errorf("record after the pinned update: %+v", r)
	}
}

// TestRollback: an update keeps the replaced image; rollback restores it
// without the network, through the same transaction (update action
// included), and holds the extension. A second rollback is possible too.
func TestRollback(t *testing.T) {
	b := newBench(t)
	b.publish("alpha", "1", "alpha.service")
	b.apply(VerbInstall, "alpha")
	if _, err := b.e.RollbackPlan(context.Background(), "alpha"); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback with nothing kept = %v, want ErrNoPrevious", err)
	}
	b.publish("alpha", "2", "alpha.service")
	if r := b.apply(VerbUpdate); !r.OK {
		t.Fatal(r.Error)
	}
	b.src.fail["download sysext-alpha_1.squashfs"] = errors.New("the network is down")
	b.src.fail["download sysext-alpha_2.squashfs"] = errors.New("the network is down")
	mark := len(b.rec.calls)
	p, err := b.e.RollbackPlan(context.Background(), "alpha")
	if err != nil {
		t.Fatal(err)
	}
	rs := b.e.Apply(context.Background(), p)
	if !rs[0].OK || rs[0].From != "2" || rs[0].To != "1" {
		t.Fatalf("rollback = %+v", rs[0])
	}
	if got := b.calls(mark, "^download"); len(got) != 0 {
		t.Errorf("rollback downloaded: %v", got)
	}
	if got := b.calls(mark, "^restart alpha.service$"); len(got) != 1 {
		t.Errorf("the update action did not run on rollback: %v", b.rec.calls[mark:])
	}
	if got := b.installed()["alpha"]; got != "1" {
		t.Fatalf("after rollback alpha = %s", got)
	}
	st, _ := store.Store{Root: b.e.Root}.LoadState()
	rec := st.Extensions["alpha"]
	if !rec.Hold || !strings.Contains(rec.HoldReason, "rolled back from 2") || rec.Previous == nil || rec.Previous.Version != "2" {
		t.Fatalf("record after rollback: %+v (previous %+v)", rec, rec.Previous)
	}
	// The update is held now; undo the rollback by rolling back again.
	if r := b.apply(VerbUpdate); r.Op != OpNone {
		t.Errorf("update after rollback was not held: %+v", r)
	}
	p, _ = b.e.RollbackPlan(context.Background(), "alpha")
	if rs := b.e.Apply(context.Background(), p); !rs[0].OK || b.installed()["alpha"] != "2" {
		t.Fatalf("second rollback: %+v", rs[0])
	}
	// Remove drops the kept image.
	b.e.SetHold("alpha", false, "")
	b.apply(VerbRemove, "alpha")
	if _, err := os.Stat(store.Store{Root: b.e.Root}.PreviousPath("sysext-alpha")); !os.IsNotExist(err) {
		t.Errorf("previous image kept after remove: %v", err)
	}
}

// TestPreflightRefusesBeforeDownloading: too little room is refused with
// the sizes named, before the source is asked for a byte.
func TestPreflightRefusesBeforeDownloading(t *testing.T) {
	b := newBench(t)
	b.publish("alpha", "1")
	b.src.releases["alpha"].Image.Size = 300 << 20
	b.e.FreeSpace = func(string) (uint64, error) { return 100 << 20, nil }
	r := b.apply(VerbInstall, "alpha")
	if r.OK || !strings.Contains(r.Error, "needs 300.0 MiB plus a 1.0 MiB reserve, 100.0 MiB free") ||
		!strings.Contains(r.Error, rootfs.StateDir+"/staging") {
		t.Fatalf("install without room = %+v", r)
	}
	if got := b.calls(0, "^download"); len(got) != 0 {
		t.Errorf("downloaded anyway: %v", got)
	}
	if got := b.installed(); len(got) != 0 {
		t.Errorf("installed %v", got)
	}
}
