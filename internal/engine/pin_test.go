package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/store"
)

func TestPinInstallsWhatIsNotInstalled(t *testing.T) {
	b := newBench(t)
	b.publish("beta", "1")
	ctx := context.Background()

	p, err := b.e.PinPlan(ctx, "beta", "7", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 0 || len(p.Failures) != 1 || !strings.Contains(p.Failures[0].Error, "the release found is 1") {
		t.Fatalf("pin to a version not found: %+v, want one failure naming what was found", p)
	}
	if rs := b.e.Apply(ctx, p); len(rs) != 1 || rs[0].OK {
		t.Fatalf("results %+v, want the failure", rs)
	}
	if got := b.installed(); len(got) != 0 {
		t.Fatalf("installed %v after a refused pin", got)
	}

	p, err = b.e.PinPlan(ctx, "beta", "1", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 || p.Steps[0].Op != OpInstall || p.Steps[0].Reason != "pinned to 1" {
		t.Fatalf("plan = %+v, want an install pinned to 1", p.Steps)
	}
	if rs := b.e.Apply(ctx, p); len(rs) != 1 || !rs[0].OK {
		t.Fatalf("results %+v", rs)
	}
	st, _ := store.Store{Root: b.e.Root}.LoadState()
	if r := st.Extensions["beta"]; r == nil || r.Version != "1" || r.Pin != "1" || r.InstalledBy != store.ByManual {
		t.Fatalf("record %+v, want 1 pinned to 1, manual", r)
	}
	// A newer release does not move it.
	b.publish("beta", "2")
	if r := b.apply(VerbUpdate, "beta"); r.Op != OpNone || r.Message != "pinned to 1" {
		t.Errorf("update of a pinned extension: %+v", r)
	}
}

func TestPinDryRunChangesNothing(t *testing.T) {
	b := newBench(t)
	b.publish("beta", "1")
	b.apply(VerbInstall, "beta")
	if _, err := b.e.PinPlan(context.Background(), "beta", "1", true); err != nil {
		t.Fatal(err)
	}
	st, _ := store.Store{Root: b.e.Root}.LoadState()
	if pin := st.Extensions["beta"].Pin; pin != "" {
		t.Errorf("a dry run pinned beta to %q", pin)
	}
}

// TestPinWinsOverPhase: pinning an extension not installed to a release
// phased away for this appliance installs it; a withdrawn one is refused.
func TestPinWinsOverPhase(t *testing.T) {
	for _, c := range []struct {
		rj   string
		want bool
	}{
		{`{"phased_percentage":0}`, true},
		{`{"withdrawn":true}`, false},
	} {
		b := newBench(t)
		b.setMachineID("0123456789abcdef0123456789abcdef")
		b.publish("beta", "1")
		b.withReleaseJSON("beta", c.rj)
		p, err := b.e.PinPlan(context.Background(), "beta", "1", false)
		if err != nil {
			t.Fatal(err)
		}
		rs := b.e.Apply(context.Background(), p)
		if ok := len(rs) == 1 && rs[0].OK; ok != c.want {
			t.Errorf("%s: pin results %+v, want ok %v", c.rj, rs, c.want)
		}
		if b.e.IgnorePhasing {
			t.Errorf("%s: PinPlan left IgnorePhasing set", c.rj)
		}
		st, _ := store.Store{Root: b.e.Root}.LoadState()
		if got := st.Extensions["beta"] != nil && st.Extensions["beta"].Pin == "1"; got != c.want {
			t.Errorf("%s: installed and pinned %v, want %v", c.rj, got, c.want)
		}
	}
}
