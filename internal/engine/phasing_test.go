package engine

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rollout"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// withReleaseJSON adds a release.json with content to name's newest
// release.
func (b *bench) withReleaseJSON(name, content string) {
	b.t.Helper()
	b.withReleaseJSONAt(name, b.src.releases[name].Version, content)
}

func (b *bench) setMachineID(id string) {
	os.MkdirAll(b.e.Root.Path("/etc"), 0o755)
	os.WriteFile(b.e.Root.Path(rootfs.MachineID), []byte(id+"\n"), 0o444)
}

// A phased release reaches an appliance only when its bucket is below the
// phase; --ignore-phasing takes it anyway; list says why it waits.
func TestPhasedRelease(t *testing.T) {
	const machine = "0123456789abcdef0123456789abcdef"
	bucket := rollout.Bucket(machine, "beta", "t2")
	for _, tt := range []struct {
		pct    int
		ignore bool
		want   Op
	}{
		{bucket, false, OpNone},       // bucket < pct is false: waits
		{bucket + 1, false, OpUpdate}, // takes it
		{0, true, OpUpdate},
		{100, false, OpUpdate},
	} {
		t.Run(fmt.Sprintf("%d%% ignore=%v", tt.pct, tt.ignore), func(t *testing.T) {
			b := newBench(t)
			b.setMachineID(machine)
			b.publish("beta", "1")
			if r := b.apply(VerbInstall, "beta"); !r.OK {
				t.Fatal(r.Error)
			}
			b.publish("beta", "2")
			b.withReleaseJSON("beta", fmt.Sprintf(`{"version":"t2","phased_percentage":%d}`, tt.pct))
			b.e.IgnorePhasing = tt.ignore
			p, err := b.e.MakePlan(t.Context(), VerbUpdate, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Steps) != 1 || p.Steps[0].Op != tt.want {
				t.Fatalf("plan %+v, want %s", p.Steps, tt.want)
			}
			if tt.want == OpNone && !strings.Contains(p.Steps[0].Reason, "not yet for this appliance") {
				t.Errorf("reason %q", p.Steps[0].Reason)
			}
			items, _ := b.e.List(t.Context(), false)
			for _, it := range items {
				if it.Name == "beta" && tt.want == OpNone && !tt.ignore && (it.UpdateAvailable || !strings.Contains(it.Rollout, "phased")) {
					t.Errorf("list: update_available %v, rollout %q", it.UpdateAvailable, it.Rollout)
				}
			}
		})
	}
}

// A fresh install never takes a phased-away or withdrawn release.
func TestFreshInstallRespectsRollout(t *testing.T) {
	for _, rj := range []string{`{"phased_percentage":0}`, `{"withdrawn":true}`} {
		b := newBench(t)
		b.setMachineID("m")
		b.publish("beta", "1")
		b.withReleaseJSON("beta", rj)
		r := b.apply(VerbInstall, "beta")
		if r.OK || !(strings.Contains(r.Error, "phased") || strings.Contains(r.Error, "withdrawn")) {
			t.Errorf("%s: install = %+v", rj, r)
		}
		if got := b.installed(); len(got) != 0 {
			t.Errorf("%s: installed %v", rj, got)
		}
	}
}

// An appliance running a withdrawn release goes back to the kept previous
// image on its next check, offline, through the usual transaction.
func TestWithdrawnGoesBack(t *testing.T) {
	b := newBench(t)
	b.publish("alpha", "1", "alpha.service")
	if r := b.apply(VerbInstall, "alpha"); !r.OK {
		t.Fatal(r.Error)
	}
	b.publish("alpha", "2", "alpha.service")
	if r := b.apply(VerbUpdate, "alpha"); !r.OK {
		t.Fatal(r.Error)
	}
	b.withReleaseJSON("alpha", `{"withdrawn":true}`)
	b.src.fail["download "+b.src.releases["alpha"].Image.Name] = fmt.Errorf("offline")
	mark := len(b.rec.calls)
	r := b.apply(VerbAuto)
	if !r.OK || r.To != "1" {
		t.Fatalf("auto = %+v, want back to 1", r)
	}
	if got := b.installed()["alpha"]; got != "1" {
		t.Errorf("alpha = %s, want 1", got)
	}
	if got := b.calls(mark, "^restart alpha.service$"); len(got) != 1 {
		t.Errorf("update action on going back: %v", b.rec.calls[mark:])
	}
	// The next check stays on 1: the withdrawn release is never taken again.
	if r := b.apply(VerbAuto); r.Op != OpNone || !strings.Contains(r.Message, "withdrawn") {
		t.Errorf("next auto = %+v", r)
	}
}

// Phasing and withdrawal of a signed release come only from verified data:
// a release.json the signed SHA256SUMS does not list is ignored, so a
// mirror cannot withdraw a release or phase it away.
func TestUnverifiedRolloutIgnored(t *testing.T) {
	b := newBench(t)
	for _, en := range b.e.Manifests.Entries {
		en.Source = rootfs.VendorManifest
	}
	priv := vendorKey(t, b, "spamtagger")
	b.setMachineID("m")
	b.publish("beta", "1")
	b.sign("beta", priv, false)
	if r := b.apply(VerbInstall, "beta"); !r.OK {
		t.Fatal(r.Error)
	}
	b.publish("beta", "2")
	b.sign("beta", priv, false) // SHA256SUMS lists the image only
	b.withReleaseJSON("beta", `{"withdrawn":true,"phased_percentage":0}`)
	if r := b.apply(VerbUpdate, "beta"); !r.OK || r.To != "2" {
		t.Fatalf("update = %+v, want 2: an unsigned release.json must not withdraw a signed release", r)
	}
}

// FuzzParseRollout: any release.json gives a rollout within bounds or an
// error, never a phase outside 0–100.
func FuzzParseRollout(f *testing.F) {
	for _, s := range []string{`{}`, `{"phased_percentage":10}`, `{"withdrawn":true}`, `{"phased_percentage":100.5}`, `[]`, `{"phased_percentage":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ro, err := parseRollout(b)
		if err == nil && (ro.Phased < 0 || ro.Phased > 100) {
			t.Fatalf("parseRollout(%q) = %+v", b, ro)
		}
		if err != nil && ro != fullRollout {
			t.Fatalf("parseRollout(%q) failed but said %+v", b, ro)
		}
	})
}
