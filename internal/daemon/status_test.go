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
	"github.com/spamtagger/sysextd/internal/status"
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
	waitStatus := func(what string, ok func(*status.Daemon) bool) *status.Daemon {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		var st *status.Daemon
		var err error
		for time.Now().Before(deadline) {
			st, err = status.Read(root)
			if err == nil && st != nil && ok(st) {
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("never saw %s in daemon.json: last %+v, %v\nlog:\n%s", what, st, err, logs.String())
		return nil
	}
	st := waitStatus("a failed start", func(s *status.Daemon) bool { return s.State == status.StateStartFailed })
	if !strings.Contains(st.LastError, "parsing state") || st.LastErrorAt == nil || st.NextCheck == nil || st.Started || st.Version != "1.2.3" || st.PID != os.Getpid() {
		t.Errorf("after a failed start: %+v; want the error, its time, the retry time, not started, version and pid", st)
	}
	if !st.Running(root) {
		t.Error("Running = false while the daemon runs")
	}
	os.WriteFile(statePath, []byte(`{"extensions":{}}`), 0o644)
	st = waitStatus("idle", func(s *status.Daemon) bool { return s.State == status.StateIdle })
	if !st.Started || st.LastCheck == nil || !st.LastCheckOK || st.NextCheck == nil || !st.NextCheck.After(*st.LastCheck) {
		t.Errorf("idle: %+v; want started, a successful last check and a later next check", st)
	}
	if !strings.Contains(st.LastError, "parsing state") {
		t.Errorf("idle: last error %q was forgotten; want it kept for the operator", st.LastError)
	}
	fi, err := os.Stat(root.Path(status.File))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("daemon.json mode = %v, %v; want 0644", fi, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if st, _ := status.Read(root); st == nil || st.State != status.StateStopped || st.Running(root) {
		t.Errorf("after SIGTERM: %+v; want stopped", st)
	}
}
