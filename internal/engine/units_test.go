package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/image"
)

// startUnits runtime-enables the units, reloads the manager (which then
// sees the targets' new dependencies) and enqueues their starts in order
// (units.Manager.StartAll waits for them together).
func TestStartUnitsInOrderAfterOneReload(t *testing.T) {
	b := newBench(t)
	b.publish("beta", "1", "b1.service", "b2.service")
	mark := len(b.rec.calls)
	if r := b.apply(VerbInstall, "beta"); !r.OK {
		t.Fatal(r.Error)
	}
	got := b.calls(mark, "^(reload|enable|start )")
	want := []string{"enable b1.service b2.service", "reload", "start b1.service", "start b2.service"}
	if !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// loaderUnits is fakeUnits with what startUnitsUnloaded asks of a real
// manager: which units it holds, and a rescan of its unit directories.
type loaderUnits struct {
	*fakeUnits
	held      []string
	loadedErr error
	rescanErr error
}

func (u *loaderUnits) Loaded(_ context.Context, names []string) ([]string, error) {
	u.rec.add("loaded? %s", strings.Join(names, " "))
	var out []string
	for _, n := range names {
		if slices.Contains(u.held, n) {
			out = append(out, n)
		}
	}
	return out, u.loadedErr
}

func (u *loaderUnits) RescanUnitPaths() error {
	u.rec.add("rescan")
	return u.rescanErr
}

// Activate (the daemon's start) reloads the manager only when it holds
// something the merged images configure, or an image ships what only a
// reload takes in; otherwise a rescan of the unit directories is enough.
func TestActivateReloadsOnlyWhenOwed(t *testing.T) {
	dropIn := map[string]string{
		"usr/lib/systemd/system/a2.service":                "[Service]\nExecStart=/bin/true\n",
		"usr/lib/systemd/system/nginx.service.d/10-a.conf": "[Service]\nEnvironment=A=1\n",
	}
	generator := map[string]string{image.ManagerDirs[1] + "/a-gen": "#!/bin/sh\n"}
	cases := []struct {
		name   string
		extra  map[string]string
		setup  func(u *loaderUnits)
		reload bool
	}{
		{"nothing held: no reload", dropIn, func(*loaderUnits) {}, false},
		{"a unit the image ships is held", dropIn, func(u *loaderUnits) { u.held = []string{"a2.service"} }, true},
		{"a unit the image starts is held", dropIn, func(u *loaderUnits) { u.held = []string{"a1.service"} }, true},
		{"a unit the image only configures is held", dropIn, func(u *loaderUnits) { u.held = []string{"nginx.service"} }, true},
		{"the manager cannot say", dropIn, func(u *loaderUnits) { u.loadedErr = errors.New("bus gone") }, true},
		{"a generator", generator, func(*loaderUnits) {}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t)
			b.publishWith("alpha", "1", tc.extra, "a1.service")
			if r := b.apply(VerbInstall, "alpha"); !r.OK {
				t.Fatal(r.Error)
			}
			u := &loaderUnits{fakeUnits: b.un}
			b.e.Units = u
			tc.setup(u)
			mark := len(b.rec.calls)
			if err := b.e.Activate(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := []string{"enable a1.service", "rescan", "start a1.service"}
			if tc.reload {
				want = []string{"enable a1.service", "reload", "start a1.service"}
			}
			if got := b.calls(mark, "^(reload|enable|start |rescan)"); !slices.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
			if tc.extra["usr/lib/systemd/system/a2.service"] != "" && tc.name != "the manager cannot say" {
				asked := b.calls(mark, "^loaded\\?")
				if want := []string{"loaded? a1.service a2.service nginx.service"}; !slices.Equal(asked, want) {
					t.Errorf("asked %v, want %v", asked, want)
				}
			}
		})
	}
}

// A rescan that fails falls back to the reload.
func TestActivateReloadsWhenTheRescanFails(t *testing.T) {
	b := newBench(t)
	b.publish("alpha", "1", "a1.service")
	if r := b.apply(VerbInstall, "alpha"); !r.OK {
		t.Fatal(r.Error)
	}
	b.e.Units = &loaderUnits{fakeUnits: b.un, rescanErr: errors.New("read-only /run")}
	mark := len(b.rec.calls)
	if err := b.e.Activate(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"enable a1.service", "rescan", "reload", "start a1.service"}
	if got := b.calls(mark, "^(reload|enable|start |rescan)"); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// An image with no unit to start but a drop-in for a unit the manager
// holds owes it a reload, at the daemon's start and when installed; one
// whose drop-in's unit is not held owes nothing.
func TestDropInOnlyImageReloadsWhenItsUnitIsHeld(t *testing.T) {
	dropIn := map[string]string{"usr/lib/systemd/system/nginx.service.d/10-a.conf": "[Service]\nEnvironment=A=1\n"}
	for _, held := range []bool{true, false} {
		t.Run(map[bool]string{true: "held", false: "not held"}[held], func(t *testing.T) {
			b := newBench(t)
			u := &loaderUnits{fakeUnits: b.un}
			if held {
				u.held = []string{"nginx.service"}
			}
			b.e.Units = u
			b.publishWith("alpha", "1", dropIn)
			mark := len(b.rec.calls)
			if r := b.apply(VerbInstall, "alpha"); !r.OK {
				t.Fatal(r.Error)
			}
			var want []string
			if held {
				want = []string{"reload"}
			}
			if got := b.calls(mark, "^(reload|enable|start |rescan)"); !slices.Equal(got, want) {
				t.Errorf("install: calls %v, want %v", got, want)
			}
			mark = len(b.rec.calls)
			if err := b.e.Activate(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := b.calls(mark, "^(reload|enable|start |rescan)"); !slices.Equal(got, want) {
				t.Errorf("Activate: calls %v, want %v", got, want)
			}
		})
	}
}
