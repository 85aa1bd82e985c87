package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

func TestHistoryCmd(t *testing.T) {
	dir := t.TempDir()
	s := store.Store{Root: rootfs.New(dir)}
	t0 := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	for _, e := range []store.HistoryEntry{
		{Time: t0, Verb: "install", By: store.HistoryByCLI, Name: "hello", Op: "install", To: "2.10-3", Result: store.HistoryOK},
		{Time: t0.Add(time.Minute), Verb: "auto", By: store.HistoryByDaemon, Name: "open-vm-tools", Op: "update", From: "12.4", To: "12.5", Result: store.HistoryRolledBack, Phase: "action", Error: "open-vm-tools.service failed"},
	} {
		if err := s.AppendHistory(e); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := runCLI(t, "--root", dir, "history")
	if code != 0 || errOut != "" {
		t.Fatalf("history: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "rolled-back") || !strings.Contains(lines[2], "action: open-vm-tools.service failed") {
		t.Errorf("history output:\n%s\nwant a header and two rows, the second rolled back with its phase and error", out)
	}

	code, out, _ = runCLI(t, "--root", dir, "history", "hello", "--json")
	var got []store.HistoryEntry
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || got[0].To != "2.10-3" {
		t.Fatalf("history hello --json: exit %d, %q", code, out)
	}

	// A torn last line is a warning on stderr, not a failure.
	f, _ := os.OpenFile(s.Root.Path(store.HistoryFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026`)
	f.Close()
	code, out, errOut = runCLI(t, "--root", dir, "history", "--json", "nothing-here")
	if code != 0 || strings.TrimSpace(out) != "[]" || !strings.Contains(errOut, "history.jsonl:3") {
		t.Errorf("history with torn line: exit %d, stdout %q, stderr %q; want 0, [], a warning naming line 3", code, out, errOut)
	}
}
