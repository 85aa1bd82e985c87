package store

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestHistoryAppendAndFilter(t *testing.T) {
	s := newStore(t)
	if got, err := s.History(""); err != nil || len(got) != 0 {
		t.Fatalf("History with no file = %v, %v; want empty", got, err)
	}
	t0 := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	in := []HistoryEntry{
		{Time: t0, Verb: "install", By: HistoryByCLI, Name: "hello", Op: "install", To: "2.10-3", Result: HistoryOK},
		{Time: t0.Add(time.Hour), Verb: "auto", By: HistoryByDaemon, Name: "open-vm-tools", Op: "update", From: "12.4", To: "12.5", Result: HistoryRolledBack, Error: "restarting open-vm-tools.service: failed", Phase: "action"},
		{Time: t0.Add(2 * time.Hour), Verb: "update", By: HistoryByCLI, Name: "hello", Op: "update", From: "2.10-3", To: "2.12-1", Result: HistoryOK},
	}
	for _, e := range in {
		if err := s.AppendHistory(e); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(s.Root.Path(HistoryFile))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("history file mode = %v, %v; want 0644", fi, err)
	}
	all, err := s.History("")
	if err != nil || len(all) != 3 {
		t.Fatalf("History(\"\") = %d entries, %v; want 3", len(all), err)
	}
	if all[1].Result != HistoryRolledBack || all[1].Phase != "action" || all[1].From != "12.4" || !all[1].Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("entry 1 = %+v, want %+v", all[1], in[1])
	}
	hello, err := s.History("hello")
	if err != nil || len(hello) != 2 || hello[0].To != "2.10-3" || hello[1].To != "2.12-1" {
		t.Fatalf("History(hello) = %+v, %v; want the two hello entries in order", hello, err)
	}
}

// A crash mid-write leaves a torn last line: reading skips it with a
// warning, and the next append starts on its own line, so no entry is lost
// but the torn one.
func TestHistoryTornLine(t *testing.T) {
	s := newStore(t)
	if err := s.AppendHistory(HistoryEntry{Verb: "install", By: HistoryByCLI, Name: "a", Op: "install", To: "1", Result: HistoryOK}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(s.Root.Path(HistoryFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-11-26T01:00:00Z","verb":"upd`)
	f.Close()

	got, warnings, err := s.ReadHistory("")
	if err != nil || len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("ReadHistory = %+v, %v; want the one whole entry", got, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "history.jsonl:2:") {
		t.Fatalf("warnings = %q; want one naming history.jsonl:2", warnings)
	}

	if err := s.AppendHistory(HistoryEntry{Verb: "remove", By: HistoryByDaemon, Name: "b", Op: "remove", From: "2", Result: HistoryOK}); err != nil {
		t.Fatal(err)
	}
	got, warnings, err = s.ReadHistory("")
	if err != nil || len(got) != 2 || got[1].Name != "b" {
		t.Fatalf("after append: ReadHistory = %+v, %v; want a and b", got, err)
	}
	if len(warnings) != 1 {
		t.Errorf("after append: warnings = %q; want the torn line only", warnings)
	}
	data, _ := os.ReadFile(s.Root.Path(HistoryFile))
	if !bytes.HasSuffix(data, []byte("}\n")) || bytes.Count(data, []byte("\n")) != 3 {
		t.Errorf("history file = %q; want three lines, the last whole", data)
	}
}

func TestHistoryLongErrorIsCut(t *testing.T) {
	s := newStore(t)
	long := strings.Repeat("x", 3*maxHistoryLine)
	if err := s.AppendHistory(HistoryEntry{Verb: "install", By: HistoryByCLI, Name: "a", Op: "install", Result: HistoryFailed, Error: long}); err != nil {
		t.Fatal(err)
	}
	got, warnings, err := s.ReadHistory("a")
	if err != nil || len(got) != 1 || len(warnings) != 0 {
		t.Fatalf("ReadHistory = %d entries, %q, %v; want 1, none", len(got), warnings, err)
	}
	if n := len(got[0].Error); n >= len(long) || n < maxHistoryLine/2 || !strings.HasSuffix(got[0].Error, "...") {
		t.Errorf("error kept %d bytes; want it cut below %d and marked", n, len(long))
	}
}

// An over-long foreign line is reported, and the entries after it still read.
func TestHistoryOverlongLine(t *testing.T) {
	in := strings.Repeat("y", 200<<10) + "\n" + `{"time":"2026-11-26T01:00:00Z","name":"a","result":"ok"}` + "\n"
	got, warnings, err := parseHistory(strings.NewReader(in), "h", "")
	if err != nil || len(got) != 1 || len(warnings) != 1 || !strings.HasPrefix(warnings[0], "h:1:") {
		t.Fatalf("parseHistory = %+v, %q, %v; want 1 entry, 1 warning at h:1", got, warnings, err)
	}
}

func FuzzHistory(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-26T01:00:00Z","name":"a","result":"ok"}` + "\n{\"ti"))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, warnings, err := parseHistory(bytes.NewReader(data), "h", "")
		if err != nil {
			t.Fatalf("parseHistory: %v", err)
		}
		if lines := bytes.Count(data, []byte("\n")) + 1; len(got)+len(warnings) > lines {
			t.Fatalf("%d entries + %d warnings from %d lines", len(got), len(warnings), lines)
		}
	})
}
