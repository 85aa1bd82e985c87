package engine

import (
	"context"
	"slices"
	"testing"
)

// Start is the one start sequence: a verb activates only when adoption
// changed the store; the daemon's boot start always makes sure what is
// installed is merged and its units run, and runs the staged builds
// first. The callers hear of each stage in order.
func TestStartVerbAndBoot(t *testing.T) {
	b := newBench(t)
	b.publish("alpha", "1.0-1", "alpha.service")
	if r := b.apply(VerbInstall, "alpha"); !r.OK {
		t.Fatalf("install: %s", r.Error)
	}
	b.mg.current = nil // as after a boot with systemd-sysext.service disabled

	var heard []string
	opts := StartOptions{
		OnRecovered: func(Recovery, error) { heard = append(heard, "recovered") },
		OnStaged:    func([]Result) { heard = append(heard, "staged") },
		OnAdopted:   func(Adoption) { heard = append(heard, "adopted") },
	}
	mark := len(b.rec.calls)
	if err := b.e.Start(context.Background(), opts); err != nil {
		t.Fatalf("verb start: %v", err)
	}
	if slices.Contains(b.rec.calls[mark:], "refresh") {
		t.Errorf("a verb's start refreshed with nothing adopted: %v", b.rec.calls[mark:])
	}
	if want := []string{"recovered", "adopted"}; !slices.Equal(heard, want) {
		t.Errorf("verb start told %v, want %v", heard, want)
	}

	heard = nil
	opts.Boot = true
	mark = len(b.rec.calls)
	if err := b.e.Start(context.Background(), opts); err != nil {
		t.Fatalf("boot start: %v", err)
	}
	calls := b.rec.calls[mark:]
	if !slices.Contains(calls, "refresh") || !slices.Contains(calls, "start alpha.service") {
		t.Errorf("boot start did not merge and start what is installed: %v", calls)
	}
	if want := []string{"recovered", "staged", "adopted"}; !slices.Equal(heard, want) {
		t.Errorf("boot start told %v, want %v", heard, want)
	}
}
