package units

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWaitJob(t *testing.T) {
	enqueueErr := errors.New("org.freedesktop.systemd1.NoSuchUnit: Unit nope.service not found.")
	tests := []struct {
		name       string
		enqueue    func(ch chan<- string) error
		wantResult string // JobError.Result; "" for no JobError
		wantErr    error  // errors.Is target
		wantNoErr  bool
	}{
		{"done", func(ch chan<- string) error { ch <- "done"; return nil }, "", nil, true},
		{"failed", func(ch chan<- string) error { ch <- "failed"; return nil }, "failed", nil, false},
		{"skipped", func(ch chan<- string) error { ch <- "skipped"; return nil }, "skipped", nil, false},
		{"result after the call returns", func(ch chan<- string) error {
			go func() { time.Sleep(10 * time.Millisecond); ch <- "timeout" }()
			return nil
		}, "timeout", nil, false},
		{"enqueue fails", func(ch chan<- string) error { return enqueueErr }, "", enqueueErr, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := waitJob(t.Context(), "restart", "foo.service", tt.enqueue)
			if tt.wantNoErr {
				if err != nil {
					t.Fatalf("waitJob() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("waitJob() = nil, want an error")
			}
			if !strings.Contains(err.Error(), "foo.service") {
				t.Errorf("error %q does not name the unit", err)
			}
			var jerr *JobError
			if got := errors.As(err, &jerr); got != (tt.wantResult != "") {
				t.Fatalf("errors.As JobError = %v, want %v (err %v)", got, tt.wantResult != "", err)
			}
			if jerr != nil && (jerr.Result != tt.wantResult || jerr.Unit != "foo.service" || jerr.Verb != "restart") {
				t.Errorf("JobError = %+v, want result %q for restart foo.service", jerr, tt.wantResult)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
		})
	}
}

func TestWaitJobRespectsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	var sent chan<- string
	err := waitJob(ctx, "stop", "slow.service", func(ch chan<- string) error { sent = ch; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitJob() = %v, want DeadlineExceeded", err)
	}
	// A late result must not block go-systemd's dispatcher: the channel is buffered.
	select {
	case sent <- "done":
	default:
		t.Error("late job result would block: channel is not buffered")
	}
}

func TestInvocationID(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    string
		wantErr bool
	}{
		{"id", []byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, "deadbeef000102030405060708090a0b", false},
		{"never ran", []byte{}, "", false},
		{"wrong type", "deadbeef", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := invocationID(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("invocationID(%v) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestVirtualization(t *testing.T) {
	tests := []struct {
		name, raw, want string
		wantErr         bool
	}{
		{"vm", `"kvm"`, "kvm", false},
		{"container", `"systemd-nspawn"`, "systemd-nspawn", false},
		{"bare metal", `""`, "none", false},
		{"not a string", `@ay []`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := virtualization(tt.raw)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("virtualization(%q) = %q, %v; want %q, error %v", tt.raw, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestConnectWithoutBus(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
	m, err := Connect(t.Context())
	if err == nil {
		m.Close()
		t.Fatal("Connect() without a bus succeeded")
	}
	if !errors.Is(err, ErrNoSystemBus) {
		t.Errorf("Connect() = %v, want it to wrap ErrNoSystemBus", err)
	}
}

func TestConnectWithoutBusSocket(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	if !systemBusMissing() {
		t.Skip("this machine has a system bus socket")
	}
	_, err := Connect(t.Context())
	if !errors.Is(err, ErrNoSystemBus) {
		t.Errorf("Connect() = %v, want it to wrap ErrNoSystemBus", err)
	}
}

func TestServiceHealth(t *testing.T) {
	got := serviceHealth(Health{ActiveState: "failed"}, map[string]any{"Result": "exit-code", "NRestarts": uint32(3), "MainPID": uint32(0)})
	if want := (Health{ActiveState: "failed", Result: "exit-code", NRestarts: 3}); got != want {
		t.Errorf("serviceHealth = %+v, want %+v", got, want)
	}
	// A property of another type (a bus that changed) reads as zero, never
	// as a panic.
	if got := serviceHealth(Health{}, map[string]any{"NRestarts": int64(3)}); got.NRestarts != 0 {
		t.Errorf("NRestarts of the wrong type = %d, want 0", got.NRestarts)
	}
}

// Loaded asks with fnmatch(3) patterns: a unit name must match itself only.
func TestGlobEscaper(t *testing.T) {
	for name, want := range map[string]string{
		"plain.service":          "plain.service",
		`foo\x2dbar.service`:     `foo\\x2dbar.service`,
		`dev-disk-by\x2did.swap`: `dev-disk-by\\x2did.swap`,
	} {
		if got := globEscaper.Replace(name); got != want {
			t.Errorf("pattern for %q = %q, want %q", name, got, want)
		}
	}
}
