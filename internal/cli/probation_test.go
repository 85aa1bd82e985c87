package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/release"
)

// TestListAndExplainShowProbation: a change on probation (the record the
// engine's commit writes) shows in list, list --json and explain, and only
// for the version on probation.
func TestListAndExplainShowProbation(t *testing.T) {
	f := newFixture(t, rootfs.New(t.TempDir()))
	f.write(rootfs.LocalManifest, "[alpha]\nurl = \"https://github.com/o/sysext-alpha\"\n")
	f.write("/etc/os-release", "ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n")
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	st := &store.State{
		Extensions: map[string]*store.Record{"alpha": {Name: "alpha", Image: "sysext-alpha", Version: "2", InstalledBy: store.ByManual}},
		Probation: map[string]*store.Probation{"alpha": {Name: "alpha", Image: "sysext-alpha", From: "1", To: "2",
			Units: []string{"alpha.service"}, Since: until.Add(-time.Minute), Until: until, MaxRestarts: 2}},
	}
	if err := (store.Store{Root: f.root}).SaveState(st); err != nil {
		t.Fatal(err)
	}
	want := "alpha: on probation until " + until.Local().Format(time.DateTime)
	if out := f.mustRun("list", "--offline"); !strings.Contains(out, want) {
		t.Errorf("list lacks %q:\n%s", want, out)
	}
	if it := f.list("--offline")["alpha"]; !it.ProbationUntil.Equal(until) {
		t.Errorf("list --json probation_until = %v, want %v", it.ProbationUntil, until)
	}
	if out := f.mustRun("explain", "alpha"); !strings.Contains(out, "on probation until "+until.Local().Format(time.DateTime)) {
		t.Errorf("explain lacks the probation:\n%s", out)
	}
	// A window that ended but was not settled (no sysextd running) says so.
	st.Probation["alpha"].Until = time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := (store.Store{Root: f.root}).SaveState(st); err != nil {
		t.Fatal(err)
	}
	if out := f.mustRun("list", "--offline"); !strings.Contains(out, "alpha: probation ended "+st.Probation["alpha"].Until.Local().Format(time.DateTime)) ||
		!strings.Contains(out, "not yet confirmed") {
		t.Errorf("list of an ended window:\n%s", out)
	}
	// A probation of another version (left over) is not shown.
	st.Probation["alpha"].To = "3"
	if err := (store.Store{Root: f.root}).SaveState(st); err != nil {
		t.Fatal(err)
	}
	if out := f.mustRun("list", "--offline"); strings.Contains(out, "probation") {
		t.Errorf("list shows a probation of another version:\n%s", out)
	}
}

// TestListShowsWithheld: a fresh install undone by its probation leaves
// the extension held while not installed (store.Withheld); list says so,
// with the reason, in the table's notes and in --json.
func TestListShowsWithheld(t *testing.T) {
	f := newFixture(t, rootfs.New(t.TempDir()))
	f.write(rootfs.LocalManifest, "[alpha]\nurl = \"https://github.com/o/sysext-alpha\"\n")
	f.write("/etc/os-release", "ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n")
	why := "alpha.service failed (exit-code) 5s into the probation of 1"
	st := &store.State{Withheld: map[string]*store.Withheld{"alpha": {Reason: why, Since: time.Now().UTC()}}}
	if err := (store.Store{Root: f.root}).SaveState(st); err != nil {
		t.Fatal(err)
	}
	if out := f.mustRun("list", "--offline"); !strings.Contains(out, "alpha: held: "+why) {
		t.Errorf("list lacks the hold:\n%s", out)
	}
	if it := f.list("--offline")["alpha"]; !it.Held || it.HoldReason != why || it.Status != "not-installed" {
		t.Errorf("list --json: held %v reason %q status %s", it.Held, it.HoldReason, it.Status)
	}
	if out := f.mustRun("explain", "alpha"); !strings.Contains(out, "held: "+why) {
		t.Errorf("explain lacks the hold:\n%s", out)
	}
}

// TestListAndExplainSayRollout (issue 22): a release phased away from this
// appliance, or withdrawn, is named so by list (under the table) and by
// explain, from the cached check; explain makes no request for it.
func TestListAndExplainSayRollout(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	f.write(rootfs.MachineID, "0123456789abcdef0123456789abcdef\n")
	f.publish(release.Ext{Package: "hello", Repo: "sysext-template", Version: "1.0-1",
		Extra: map[string][]byte{"release.json": []byte(`{"phased_percentage":0}`)}})
	if out := f.mustRun("list"); !strings.Contains(out, "hello: available 1.0-1 is phased (0 %), not yet for this appliance") {
		t.Errorf("list:\n%s", out)
	}
	f.gh.ResetStats()
	if out := f.mustRun("explain", "hello"); !strings.Contains(out, "available 1.0-1 is phased (0 %), not yet for this appliance") {
		t.Errorf("explain:\n%s", out)
	}
	if st := f.gh.Stats(); st.API != 0 {
		t.Errorf("explain made %d API requests, want none", st.API)
	}
	f.gh.Unpublish("SpamTagger", "sysext-template")
	f.publish(release.Ext{Package: "hello", Repo: "sysext-template", Version: "1.0-1",
		Extra: map[string][]byte{"release.json": []byte(`{"withdrawn":true}`)}})
	if out := f.mustRun("list", "--refresh"); !strings.Contains(out, "hello: available 1.0-1 is withdrawn") {
		t.Errorf("list of a withdrawn release:\n%s", out)
	}
	var ex struct {
		Rollout string `json:"rollout"`
	}
	if err := json.Unmarshal([]byte(f.mustRun("explain", "--json", "hello")), &ex); err != nil || ex.Rollout != "withdrawn" {
		t.Errorf("explain --json rollout = %q, %v", ex.Rollout, err)
	}
}
