package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

func writeConfig(t *testing.T, content string) rootfs.Root {
	t.Helper()
	root := rootfs.New(t.TempDir())
	p := root.Path(rootfs.DaemonConfig)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig(rootfs.New(t.TempDir()))
	if err != nil || cfg.Interval.Duration != 24*time.Hour || cfg.Reboot {
		t.Fatalf("default config = %+v, %v", cfg, err)
	}
	cfg, err = LoadConfig(writeConfig(t, "interval = \"6h\"\nrandomized_delay = \"10m\"\nreboot = true\nreboot_window = \"23:30-01:00\"\n"))
	if err != nil || cfg.Interval.Duration != 6*time.Hour || cfg.RandomizedDelay.Duration != 10*time.Minute || !cfg.Reboot {
		t.Fatalf("config = %+v, %v", cfg, err)
	}
	bad := []struct{ content, want string }{
		{"interval = \"soon\"\n", ":1:"},
		{"\ninterval = 5\n", "missing unit"},
		{"colour = \"red\"\n", "colour"},
		{"reboot_window = \"3-5\"\n", "reboot_window"},
		{"interval = \"0s\"\n", "positive"},
	}
	for _, b := range bad {
		_, err := LoadConfig(writeConfig(t, b.content))
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), rootfs.DaemonConfig) {
			t.Errorf("LoadConfig(%q) = %v, want an error naming the file and %q", b.content, err, b.want)
		}
	}
}

func TestWindow(t *testing.T) {
	w, _ := parseWindow("23:30-01:00")
	day := func(h, m int) time.Time { return time.Date(2026, 11, 25, h, m, 0, 0, time.Local) }
	for _, tc := range []struct {
		at   time.Time
		in   bool
		next time.Time
	}{
		{day(23, 45), true, day(23, 45)},
		{day(0, 30), true, day(0, 30)},
		{day(1, 0), false, day(23, 30)},
		{day(12, 0), false, day(23, 30)},
	} {
		if got := w.contains(tc.at); got != tc.in {
			t.Errorf("contains(%v) = %v", tc.at, got)
		}
		if got := w.next(tc.at); !got.Equal(tc.next) {
			t.Errorf("next(%v) = %v, want %v", tc.at, got, tc.next)
		}
	}
	w, _ = parseWindow("03:00-05:00")
	if got, want := w.next(day(6, 0)), time.Date(2026, 11, 26, 3, 0, 0, 0, time.Local); !got.Equal(want) {
		t.Errorf("next after the window = %v, want tomorrow %v", got, want)
	}
}

func TestNextWait(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	d := &Daemon{now: func() time.Time { return now }}
	cfg := DefaultConfig()
	if w := d.nextWait(cfg, 0, outcome{}); w < 24*time.Hour || w >= 25*time.Hour {
		t.Errorf("after success: %v, want 24h plus up to 1h", w)
	}
	for failures, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 5: 16 * time.Minute, 30: 24 * time.Hour} {
		if w := d.nextWait(cfg, failures, outcome{failed: true}); w != want {
			t.Errorf("after %d failures: %v, want %v", failures, w, want)
		}
	}
	w := d.nextWait(cfg, 1, outcome{failed: true, rateReset: now.Add(40 * time.Minute)})
	if w < 40*time.Minute || w > 41*time.Minute {
		t.Errorf("with a rate limit resetting in 40m: %v", w)
	}
}

func TestLoggerFallsBackToText(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	var buf bytes.Buffer
	newLogger(&buf, false).Info("hello", "extension", "x")
	if !strings.Contains(buf.String(), "extension=x") {
		t.Errorf("log = %q", buf.String())
	}
}

// syncBuffer is a log sink safe for the daemon's goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFailedStartIsShownAndRetried: a start that fails (here: a corrupt
// state file) still sends READY, says why in STATUS= and in the log
// message itself (what journalctl shows), and is retried with the backoff
// until it succeeds.
func TestFailedStartIsShownAndRetried(t *testing.T) {
	root := rootfs.New(t.TempDir())
	statePath := root.Path(rootfs.StateDir + "/state.json")
	os.MkdirAll(filepath.Dir(statePath), 0o755)
	os.WriteFile(statePath, []byte("{"), 0o644)
	var logs syncBuffer
	var mu sync.Mutex
	var states []string
	d := &Daemon{Root: root, Log: slog.New(slog.NewTextHandler(&logs, nil)), backoff: 50 * time.Millisecond,
		Notify: func(s string) { mu.Lock(); states = append(states, s); mu.Unlock() }}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, false) }()
	waitFor := func(what string, ok func([]string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			got := slices.Clone(states)
			mu.Unlock()
			if ok(got) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("never saw %s; notifications: %q\nlog:\n%s", what, states, logs.String())
	}
	has := func(prefix string) func([]string) bool {
		return func(ss []string) bool {
			return slices.ContainsFunc(ss, func(s string) bool { return strings.Contains(s, prefix) })
		}
	}
	waitFor("READY=1", has("READY=1"))
	waitFor("a failed start in STATUS=", has("STATUS=Start failed: parsing state"))
	if !regexp.MustCompile(`msg="activating installed extensions failed: parsing state [^"]*state.json`).MatchString(logs.String()) {
		t.Errorf("the log message does not carry the error text:\n%s", logs.String())
	}
	os.WriteFile(statePath, []byte(`{"extensions":{}}`), 0o644)
	waitFor("the retried start to succeed and go idle", has("STATUS=Idle; next check at"))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
