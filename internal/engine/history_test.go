package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

func TestRecordHistory(t *testing.T) {
	at := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	e := &Engine{Root: rootfs.New(t.TempDir()), Now: func() time.Time { return at }}
	e.RecordHistory("auto", store.HistoryByDaemon, []Result{
		{Name: "hello", Op: OpInstall, OK: true, To: "2.10-3", Message: "installed hello 2.10-3"},
		{Name: "same", Op: OpNone, OK: true, From: "1", Message: "up to date"},
		{Name: "ovt", Op: OpUpdate, From: "12.4", To: "12.5", RolledBack: true, Phase: "action", Error: "restarting open-vm-tools.service: failed"},
		failed("net", OpInstall, errors.New("downloading x: connection refused")),
	})
	got, err := e.store().History("")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.HistoryEntry{
		{Time: at, Verb: "auto", By: "daemon", Name: "hello", Op: "install", To: "2.10-3", Result: "ok", Reason: "installed hello 2.10-3"},
		{Time: at, Verb: "auto", By: "daemon", Name: "ovt", Op: "update", From: "12.4", To: "12.5", Result: "rolled-back", Error: "restarting open-vm-tools.service: failed", Phase: "action"},
		{Time: at, Verb: "auto", By: "daemon", Name: "net", Op: "install", Result: "failed", Error: "downloading x: connection refused"},
	}
	if len(got) != len(want) {
		t.Fatalf("history = %+v, want %+v (no entry for a step that changed nothing)", got, want)
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) {
			t.Errorf("entry %d time = %v, want %v", i, got[i].Time, want[i].Time)
		}
		got[i].Time = want[i].Time
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
