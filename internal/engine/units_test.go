package engine

import (
	"slices"
	"testing"
)

// startUnits reloads the manager, runtime-enables the units and enqueues
// their starts in order (units.Manager.StartAll waits for them together).
func TestStartUnitsInOrderAfterOneReload(t *testing.T) {
	b := newBench(t)
	b.publish("beta", "1", "b1.service", "b2.service")
	mark := len(b.rec.calls)
	if r := b.apply(VerbInstall, "beta"); !r.OK {
		t.Fatal(r.Error)
	}
	got := b.calls(mark, "^(reload|enable|start )")
	want := []string{"reload", "enable b1.service b2.service", "start b1.service", "start b2.service"}
	if !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}
