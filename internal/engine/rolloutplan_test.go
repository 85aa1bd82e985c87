package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
)

// withReleaseJSONAt adds a release.json with content to name's release
// of version, the newest or an older one.
func (b *bench) withReleaseJSONAt(name, version, content string) {
	b.t.Helper()
	rels := append([]*source.Release{b.src.releases[name]}, b.src.older[name]...)
	for _, rel := range rels {
		if rel == nil || rel.Version != version {
			continue
		}
		p := filepath.Join(b.t.TempDir(), "release.json")
		os.WriteFile(p, []byte(content), 0o644)
		key := name + "-" + rel.Version + "-release.json"
		b.src.files[key] = p
		if rel.Assets == nil {
			rel.Assets = map[string]source.Asset{rel.Image.Name: rel.Image}
		}
		rel.Assets[ReleaseJSON] = source.Asset{Name: key}
		return
	}
	b.t.Fatalf("%s has no release %s", name, version)
}

const (
	phasedAway = `{"phased_percentage":0}`
	withdrawn  = `{"withdrawn":true}`
)

// A fresh install takes the newest release that is neither withdrawn nor
// phased away from this appliance; --ignore-phasing takes the phased one.
func TestFreshInstallTakesNewestNotRefused(t *testing.T) {
	for _, tt := range []struct {
		ignore bool
		want   string
	}{{false, "1"}, {true, "2"}} {
		b := newBench(t)
		b.setMachineID("m")
		b.publish("beta", "1")
		b.publish("beta", "2")
		b.publish("beta", "3")
		b.withReleaseJSONAt("beta", "3", withdrawn)
		b.withReleaseJSONAt("beta", "2", phasedAway)
		b.e.IgnorePhasing = tt.ignore
		if r := b.apply(VerbInstall, "beta"); !r.OK || r.To != tt.want {
			t.Errorf("ignore phasing %v: install = %+v, want %s", tt.ignore, r, tt.want)
		}
		if got := b.installed()["beta"]; got != tt.want {
			t.Errorf("ignore phasing %v: installed %s, want %s", tt.ignore, got, tt.want)
		}
	}
}

// An installed extension updates to the newest release not refused when
// it is newer, and otherwise stays, naming the refused release (not a
// "not downgrading" warning).
func TestUpdatePastPhasedRelease(t *testing.T) {
	b := newBench(t)
	b.setMachineID("m")
	b.publish("beta", "1")
	if r := b.apply(VerbInstall, "beta"); !r.OK {
		t.Fatal(r.Error)
	}
	b.publish("beta", "2")
	b.publish("beta", "3")
	b.withReleaseJSONAt("beta", "3", phasedAway)
	if r := b.apply(VerbUpdate, "beta"); !r.OK || r.To != "2" {
		t.Fatalf("update = %+v, want 2 (3 is phased away)", r)
	}
	p, err := b.e.MakePlan(t.Context(), VerbUpdate, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 || p.Steps[0].Op != OpNone || !strings.Contains(p.Steps[0].Reason, "t3 is phased (0 %), not yet for this appliance") || len(p.Warnings) != 0 {
		t.Errorf("next plan: %+v, warnings %v", p.Steps, p.Warnings)
	}
}

// TestWithdrawnLeavesEveryAppliance (issue 22, "a withdrawn release
// leaves every appliance that had it"): appliances that reached release 3
// by different paths all go to 2, the newest release not withdrawn, on
// their next check: from previous/ when it holds 2 (no download), else
// downloaded; and the update action runs as for any update.
func TestWithdrawnLeavesEveryAppliance(t *testing.T) {
	for _, tt := range []struct {
		name     string
		history  []string // versions installed in turn; the last is 3
		download bool     // 2 must be downloaded (not the kept previous)
	}{
		{"updated from 2", []string{"2", "3"}, false},
		{"updated from 1", []string{"1", "3"}, true},
		{"installed 3 fresh", []string{"3"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t)
			b.setMachineID("m")
			for _, v := range []string{"1", "2", "3"} {
				b.publish("alpha", v, "alpha.service")
			}
			for i, v := range tt.history {
				b.e.IgnorePhasing = true // reach v whatever the newest is
				rel := b.src.releases["alpha"]
				for _, o := range b.src.older["alpha"] {
					if o.Version == v {
						rel = o
					}
				}
				saved := b.src.releases["alpha"]
				b.src.releases["alpha"] = rel
				verb := VerbUpdate
				if i == 0 {
					verb = VerbInstall
				}
				if r := b.apply(verb, "alpha"); !r.OK || r.To != v {
					t.Fatalf("reaching %s: %+v", v, r)
				}
				b.src.releases["alpha"] = saved
			}
			b.e.IgnorePhasing = false
			b.withReleaseJSONAt("alpha", "3", withdrawn)
			mark := len(b.rec.calls)
			r := b.apply(VerbAuto)
			if !r.OK || r.To != "2" {
				t.Fatalf("auto = %+v, want back to 2 from the withdrawn 3", r)
			}
			if got := b.installed()["alpha"]; got != "2" {
				t.Errorf("alpha = %s, want 2", got)
			}
			if got := b.calls(mark, "^download sysext-alpha_2"); (len(got) == 1) != tt.download {
				t.Errorf("downloads of 2: %v, want a download: %v", got, tt.download)
			}
			if got := b.calls(mark, "^restart alpha.service$"); len(got) != 1 {
				t.Errorf("update action on going back: %v", b.rec.calls[mark:])
			}
			// Stays on 2 at the next check.
			if r := b.apply(VerbAuto); r.Op != OpNone || r.To != "" && r.To != "2" {
				t.Errorf("next auto = %+v", r)
			}
			if got := b.installed()["alpha"]; got != "2" {
				t.Errorf("after the next check alpha = %s, want 2", got)
			}
		})
	}
}

// Going back from a withdrawn release past a phased one: 4 phased away,
// 3 (installed) withdrawn, 2 fine and kept in previous/: back to 2,
// offline. Offline too when the source cannot be reached at all.
func TestWithdrawnPastPhasedAndOffline(t *testing.T) {
	for _, offline := range []bool{false, true} {
		t.Run(fmt.Sprintf("offline=%v", offline), func(t *testing.T) {
			b := newBench(t)
			b.setMachineID("m")
			b.publish("alpha", "2", "alpha.service")
			if r := b.apply(VerbInstall, "alpha"); !r.OK {
				t.Fatal(r.Error)
			}
			b.publish("alpha", "3", "alpha.service")
			if r := b.apply(VerbUpdate, "alpha"); !r.OK {
				t.Fatal(r.Error)
			}
			b.publish("alpha", "4", "alpha.service")
			b.withReleaseJSONAt("alpha", "4", phasedAway)
			b.withReleaseJSONAt("alpha", "3", withdrawn)
			b.src.fail["download sysext-alpha_2.squashfs"] = fmt.Errorf("offline")
			if offline {
				// Only the first answer (4, phased) came back; every later
				// lookup fails.
				b.src.older["alpha"] = nil
			}
			r := b.apply(VerbAuto)
			if offline {
				// 4 is phased away and nothing else answers: the appliance
				// stays on 3 until the source answers (it does not know 3
				// is withdrawn without reading 3's release.json).
				if r.Op != OpNone || b.installed()["alpha"] != "3" {
					t.Errorf("auto = %+v, installed %s", r, b.installed()["alpha"])
				}
				return
			}
			if !r.OK || r.To != "2" {
				t.Fatalf("auto = %+v, want back to 2", r)
			}
		})
	}
}

// Leaving a signed withdrawn release for an older signed one it must
// download is not barred by the installed release's later signature: the
// withdrawal itself is signed (release.json in SHA256SUMS). A plain
// update to that older release stays refused (TestOlderSignatureIsNoUpdate).
func TestWithdrawnSignedGoesBackPastSignedTime(t *testing.T) {
	b, priv := signedBeta(t)
	b.publish("beta", "2")
	b.sign("beta", priv, false)
	if r := b.apply(VerbUpdate, "beta"); !r.OK || r.To != "2" {
		t.Fatalf("update to 2 = %+v", r)
	}
	// 2 is withdrawn, signed; its record claims a later signature than 1's,
	// and no previous image is kept: 1 must come from the source.
	rj := filepath.Join(t.TempDir(), "release.json")
	os.WriteFile(rj, []byte(withdrawn), 0o644)
	b.signWith("beta", priv, map[string]string{ReleaseJSON: rj})
	b.src.files[ReleaseJSON] = rj
	s := store.Store{Root: b.e.Root}
	st, _ := s.LoadState()
	st.Extensions["beta"].SignedAt = st.Extensions["beta"].SignedAt.AddDate(1, 0, 0)
	st.Extensions["beta"].Previous = nil
	if err := s.SaveState(st); err != nil {
		t.Fatal(err)
	}
	b.e.sumsMemo = nil // a new check: the fake re-signed the same *Release
	mark := len(b.rec.calls)
	if r := b.apply(VerbAuto); !r.OK || r.To != "1" {
		t.Fatalf("auto = %+v, want back to 1", r)
	}
	if got := b.calls(mark, "^download sysext-beta_1"); len(got) != 1 {
		t.Errorf("1 was not downloaded: %v", b.rec.calls[mark:])
	}
}
