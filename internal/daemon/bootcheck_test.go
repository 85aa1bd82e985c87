package daemon

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// TestBootCheckCountsOncePerBoot runs `sysextd -boot-check` as
// sysextd-boot-check.service does: it counts the boot once against a
// change from another boot, records the boot as counted, removes a stale
// marker, and writes nothing when nothing is unconfirmed.
func TestBootCheckCountsOncePerBoot(t *testing.T) {
	root := rootfs.New(t.TempDir())
	st := store.Store{Root: root}
	run := func() string {
		t.Helper()
		var b bytes.Buffer
		if code := Main(t.Context(), []string{"-root", root.Dir(), "-boot-check"}, &b, "v9"); code != 0 {
			t.Fatalf("sysextd -boot-check: exit %d\n%s", code, b.String())
		}
		return b.String()
	}
	run()
	if _, err := os.Stat(st.StatePath()); !os.IsNotExist(err) {
		t.Fatalf("an empty root got a state: %v", err)
	}
	now := time.Now().UTC()
	state := &store.State{Extensions: map[string]*store.Record{"alpha": {Name: "alpha", Image: "sysext-alpha", Version: "2"}},
		Probation: map[string]*store.Probation{"alpha": {Name: "alpha", Image: "sysext-alpha", From: "1", To: "2", Since: now, Until: now.Add(time.Minute),
			BootID: "an-earlier-boot", AwaitBoot: true}}}
	if err := st.SaveState(state); err != nil {
		t.Fatal(err)
	}
	if !st.UnconfirmedMarked() {
		t.Fatal("SaveState left no marker for a change on probation")
	}
	out := run()
	run() // the unit started again in the same boot
	got, err := st.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if p := got.Probation["alpha"]; p.Tries != 1 || got.CountedBoot != strings.TrimSpace(string(boot)) {
		t.Errorf("tries %d, counted_boot %q; want 1 and this boot", p.Tries, got.CountedBoot)
	}
	if !strings.Contains(out, "alpha: boot 1 with its change unconfirmed (boot_tries 3)") {
		t.Errorf("the log does not say the count:\n%s", out)
	}
	// Confirmed since (the record gone), the marker left by a crash.
	got.Probation = nil
	if err := st.SaveState(got); err != nil {
		t.Fatal(err)
	}
	if st.UnconfirmedMarked() {
		t.Fatal("SaveState left the marker with nothing on probation")
	}
	if err := root.WriteFile(rootfs.UnconfirmedMarker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run()
	if st.UnconfirmedMarked() {
		t.Error("the boot check left a stale marker")
	}
}
