package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// TestStatusFile: daemon.json follows the daemon through a failed start,
// its retry, an idle wait and SIGTERM, and stays world-readable.
func TestStatusFile(t *testing.T) {
	root := rootfs.New(t.TempDir())
	statePath := root.Path(rootfs.StateDir + "/state.json")
	os.MkdirAll(filepath.Dir(statePath), 0o755)
	os.WriteFile(statePath, []byte("{"), 0o644)
	var logs syncBuffer
	d := &Daemon{Root: root, Log: slog.New(slog.NewTextHandler(&logs, nil)), backoff: 50 * time.Millisecond, Version: "1.2.3"}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, false) }()
	waitStatus := func(what string, ok func(*Status) bool) *Status {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		var st *Status
		var err error
		for time.Now().Before(deadline) {
			st, err = ReadStatus(root)
			if err == nil && st != nil && ok(st) {
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("never saw %s in daemon.json: last %+v, %v\nlog:\n%s", what, st, err, logs.String())
		return nil
	}
	st := waitStatus("a failed start", func(s *Status) bool { return s.State == StateStartFailed })
	if !strings.Contains(st.LastError, "parsing state") || st.LastErrorAt == nil || st.NextCheck == nil || st.Started || st.Version != "1.2.3" || st.PID != os.Getpid() {
		t.Errorf("after a failed start: %+v; want the error, its time, the retry time, not started, version and pid", st)
	}
	if !st.Running(root) {
		t.Error("Running = false while the daemon runs")
	}
	os.WriteFile(statePath, []byte(`{"extensions":{}}`), 0o644)
	st = waitStatus("idle", func(s *Status) bool { return s.State == StateIdle })
	if !st.Started || st.LastCheck == nil || !st.LastCheckOK || st.NextCheck == nil || !st.NextCheck.After(*st.LastCheck) {
		t.Errorf("idle: %+v; want started, a successful last check and a later next check", st)
	}
	if !strings.Contains(st.LastError, "parsing state") {
		t.Errorf("idle: last error %q was forgotten; want it kept for the operator", st.LastError)
	}
	fi, err := os.Stat(root.Path(StatusFile))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("daemon.json mode = %v, %v; want 0644", fi, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if st, _ := ReadStatus(root); st == nil || st.State != StateStopped || st.Running(root) {
		t.Errorf("after SIGTERM: %+v; want stopped", st)
	}
}

func TestReadStatus(t *testing.T) {
	root := rootfs.New(t.TempDir())
	if st, err := ReadStatus(root); st != nil || err != nil {
		t.Fatalf("no file: %+v, %v; want nil, nil", st, err)
	}
	os.MkdirAll(root.Path(rootfs.StateDir), 0o755)
	os.WriteFile(root.Path(StatusFile), []byte("{"), 0o644)
	if _, err := ReadStatus(root); err == nil || !strings.Contains(err.Error(), "daemon.json") {
		t.Errorf("corrupt file: %v; want an error naming daemon.json", err)
	}
}

func TestPendingReboot(t *testing.T) {
	root := rootfs.New(t.TempDir())
	s := store.Store{Root: root}
	st := &store.State{Extensions: map[string]*store.Record{"b": {Name: "b"}, "a": {Name: "a"}, "c": {Name: "c"}}}
	if err := s.SaveState(st); err != nil {
		t.Fatal(err)
	}
	if got := PendingReboot(root); got.Required {
		t.Fatalf("nothing pending: %+v", got)
	}
	for _, p := range []string{"b", "linux-image-amd64", "a"} {
		if err := store.MarkRebootRequired(root, p); err != nil {
			t.Fatal(err)
		}
	}
	got := PendingReboot(root)
	if !got.Required || strings.Join(got.Extensions, ",") != "a,b" || got.Reason != "the update of a and b requires it" {
		t.Errorf("PendingReboot = %+v; want a and b (not the foreign package)", got)
	}
}
