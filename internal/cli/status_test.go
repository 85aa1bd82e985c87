package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/status"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/release"
)

func TestStatus(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	list := f.mustRun("list", "--offline")

	// No daemon yet: a header saying so, then exactly the list.
	out := f.mustRun("status", "--offline")
	if !strings.HasPrefix(out, "Daemon:  no status") || !strings.HasSuffix(out, "\n\n"+list) {
		t.Fatalf("status without a daemon:\n%s\nwant the header, a blank line, then list's output:\n%s", out, list)
	}

	last := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // noon: the same date in any time zone
	next := last.Add(24 * time.Hour)
	if err := status.Write(f.root, &status.Daemon{Version: "1.0", PID: 1, State: status.StateIdle, Started: true,
		LastCheck: &last, LastCheckOK: true, NextCheck: &next, LastError: "auto failed: 1 extension(s) failed", LastErrorAt: &last}); err != nil {
		t.Fatal(err)
	}
	f.write(rootfs.StateDir+"/state.json", `{"extensions":{"qemu-guest-agent":{"name":"qemu-guest-agent","image":"sysext-qemu-guest-agent","version":"1","hold":true,"hold_reason":"rolled back","pin":"1"}}}`)
	if err := store.MarkRebootRequired(f.root, "qemu-guest-agent"); err != nil {
		t.Fatal(err)
	}
	f.write("/var/lib/sysextd/staged/14/sysext-qemu-guest-agent.raw", "not read by status")
	out = f.mustRun("status", "--offline")
	for _, want := range []string{"Staged:  for OS version 14, at its first boot: sysext-qemu-guest-agent", "Daemon:  idle, last check 2026-11-25", ", next 2026-11-26", "last error at", "auto failed: 1 extension(s) failed",
		"Reboot:  required: the update of qemu-guest-agent requires it", "Held:    qemu-guest-agent pinned to 1 (rolled back)", "EXTENSION"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if legacy := f.mustRun("-s", "--offline"); legacy != out {
		t.Errorf("-s differs from status:\n%s\nvs\n%s", legacy, out)
	}

	out = f.mustRun("status", "--offline", "--json")
	var v struct {
		Daemon     map[string]any      `json:"daemon"`
		Reboot     status.Reboot       `json:"reboot"`
		Holds      []map[string]any    `json:"holds"`
		Extensions []map[string]any    `json:"extensions"`
		Staged     map[string][]string `json:"staged"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if v.Daemon["state"] != "idle" || v.Daemon["next_check"] != "2026-11-26T12:00:00Z" || v.Daemon["version"] != "1.0" {
		t.Errorf("daemon = %v", v.Daemon)
	}
	if _, ok := v.Daemon["running"]; !ok {
		t.Errorf("daemon has no running key: %v", v.Daemon)
	}
	if len(v.Staged["14"]) != 1 {
		t.Errorf("staged = %v", v.Staged)
	}
	if !v.Reboot.Required || len(v.Holds) != 1 || v.Holds[0]["name"] != "qemu-guest-agent" || len(v.Extensions) == 0 || v.Extensions[0]["name"] == nil {
		t.Errorf("status --json = %s", out)
	}

	// A corrupt daemon.json is a warning: the list still shows.
	os.WriteFile(f.root.Path(status.File), []byte("{"), 0o644)
	stdout, stderr, code := f.run("status", "--offline")
	if code != 0 || !strings.Contains(stderr, "daemon.json") || !strings.Contains(stdout, "EXTENSION") {
		t.Errorf("corrupt daemon.json: exit %d, stderr %q", code, stderr)
	}
}

// TestStatusNeedsNoNetwork: status answers from the cached release data,
// root or not, when GitHub cannot be reached, and says how old it is;
// --refresh is the explicit request that needs the network.
func TestStatusNeedsNoNetwork(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	f.publish(release.Ext{Package: "hello", Version: "1.0-1", Repo: "sysext-template"})
	f.mustRun("list") // fills the cache
	f.gh.SetAPIFault(fakegithub.FaultServerError)
	out, stderr, code := f.run("status", "--json")
	if code != ExitOK {
		t.Fatalf("status --json with GitHub failing: exit %d (%s), want 0", code, stderr)
	}
	var v status.Report
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.ReleaseData.CheckedAt == nil || v.ReleaseData.AgeSeconds == nil || *v.ReleaseData.AgeSeconds > 60 || v.ReleaseData.Refreshed {
		t.Errorf("release_data = %+v, want checked within the last minute, not refreshed", v.ReleaseData)
	}
	if out := f.mustRun("status"); !strings.Contains(out, "Releases: checked ") {
		t.Errorf("status does not say how old the release data is:\n%s", out)
	}
	if _, _, code := f.run("status", "--refresh"); code != ExitNetwork {
		t.Errorf("status --refresh with GitHub failing: exit %d, want %d", code, ExitNetwork)
	}
}
