// Package units starts, stops, restarts and enables systemd units over the
// system bus (go-systemd's D-Bus client), waiting for each job's result.
// It is what SPEC §7 (units shipped by an extension) and §8 (`service:`
// update actions) need, and nothing more.
package units

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// ErrNoSystemBus is wrapped by Connect when there is no system bus to talk
// to (no socket, or nobody listening), as on a host or build container that
// does not run systemd.
var ErrNoSystemBus = errors.New("no system D-Bus")

// JobError reports a unit job that finished with a result other than
// "done": "failed", "timeout", "canceled", "dependency", "skipped" ...
type JobError struct {
	Verb   string // "start", "stop", "restart"
	Unit   string
	Result string
}

func (e *JobError) Error() string {
	return fmt.Sprintf("%s %s: job finished %q", e.Verb, e.Unit, e.Result)
}

// Manager is a connection to the systemd manager. Close it when done.
type Manager struct {
	conn *sdbus.Conn
}

// Connect opens a connection to systemd on the system bus. When there is no
// bus the error wraps ErrNoSystemBus.
func Connect(ctx context.Context) (*Manager, error) {
	if systemBusMissing() {
		return nil, fmt.Errorf("connecting to systemd: %w (no %s)", ErrNoSystemBus, strings.Join(systemBusSockets, " or "))
	}
	conn, err := sdbus.NewSystemConnectionContext(ctx)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			err = fmt.Errorf("%w: %w", ErrNoSystemBus, err)
		}
		return nil, fmt.Errorf("connecting to systemd: %w", err)
	}
	return &Manager{conn: conn}, nil
}

// systemBusSockets are where godbus looks for the system bus when
// DBUS_SYSTEM_BUS_ADDRESS is unset.
var systemBusSockets = []string{"/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket"}

// systemBusMissing mirrors godbus's lookup, whose own "system bus not found"
// is an untyped error.
func systemBusMissing() bool {
	if os.Getenv("DBUS_SYSTEM_BUS_ADDRESS") != "" {
		return false
	}
	for _, p := range systemBusSockets {
		if _, err := os.Stat(p); err == nil {
			return false
		}
	}
	return true
}

// Close closes the connection.
func (m *Manager) Close() { m.conn.Close() }

// Reload runs a daemon-reload and returns when the manager has reloaded.
func (m *Manager) Reload(ctx context.Context) error {
	if err := m.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("reloading systemd: %w", err)
	}
	return nil
}

// Loaded returns those of names that the manager holds in memory, in any
// load state ("loaded", "not-found", "masked" ...), without loading any:
// ListUnitsByPatterns only looks, where GetUnitProperties or
// ListUnitsByNames would load the unit they are asked about.
func (m *Manager) Loaded(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	patterns := make([]string, len(names))
	for i, n := range names {
		// The patterns are fnmatch(3) globs: a backslash (systemd's
		// escapes, "foo\x2dbar.service") must match itself.
		patterns[i] = globEscaper.Replace(n)
	}
	us, err := m.conn.ListUnitsByPatternsContext(ctx, nil, patterns)
	if err != nil {
		return nil, fmt.Errorf("listing the loaded units among %s: %w", strings.Join(names, " "), err)
	}
	var out []string
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out, nil
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)

// RuntimeUnitDir is the unit directory RescanUnitPaths touches.
const RuntimeUnitDir = "/run/systemd/system"

// RescanUnitPaths makes the manager rebuild its unit path cache at its
// next unit load, without a daemon-reload. systemd keeps a hash of the
// modification times of its unit search directories and rescans them all
// when the hash changed; an overlay reports its topmost layer's time, so a
// merge can leave every time as it was (docs/systemd-sysext.md). Setting
// the time of RuntimeUnitDir, one of those directories, changes the hash.
// It makes units the manager has not loaded yet loadable, drop-ins
// included; it changes nothing for a unit already loaded.
func (m *Manager) RescanUnitPaths() error {
	if err := os.MkdirAll(RuntimeUnitDir, 0o755); err != nil {
		return fmt.Errorf("making systemd rescan its unit directories: %w", err)
	}
	fi, err := os.Stat(RuntimeUnitDir)
	if err != nil {
		return fmt.Errorf("making systemd rescan its unit directories: %w", err)
	}
	now := time.Now()
	if now.Equal(fi.ModTime()) {
		now = now.Add(time.Nanosecond)
	}
	if err := os.Chtimes(RuntimeUnitDir, now, now); err != nil {
		return fmt.Errorf("making systemd rescan its unit directories: %w", err)
	}
	return nil
}

// Restart restarts unit (mode "replace") and waits for the job: anything
// but "done" is a *JobError. It returns ctx's error if ctx ends first (the
// job itself goes on in systemd).
func (m *Manager) Restart(ctx context.Context, unit string) error {
	return waitJob(ctx, "restart", unit, func(ch chan<- string) error {
		_, err := m.conn.RestartUnitContext(ctx, unit, "replace", ch)
		return err
	})
}

// Start starts unit and waits for the job, like Restart.
func (m *Manager) Start(ctx context.Context, unit string) error {
	return waitJob(ctx, "start", unit, func(ch chan<- string) error {
		_, err := m.conn.StartUnitContext(ctx, unit, "replace", ch)
		return err
	})
}

// StartAll enqueues a start job for each unit, in order, then waits for
// every one: independent units start together instead of one after the
// other. Every unit whose job failed is in the error.
func (m *Manager) StartAll(ctx context.Context, units []string) error {
	chs := make([]chan string, len(units))
	var errs []error
	for i, u := range units {
		chs[i] = make(chan string, 1) // buffered: see waitJob
		if _, err := m.conn.StartUnitContext(ctx, u, "replace", chs[i]); err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", u, err))
			chs[i] = nil
		}
	}
	for i, ch := range chs {
		if ch == nil {
			continue
		}
		select {
		case result := <-ch:
			if result != "done" {
				errs = append(errs, &JobError{Verb: "start", Unit: units[i], Result: result})
			}
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("waiting for start %s: %w", units[i], ctx.Err()))...)
		}
	}
	return errors.Join(errs...)
}

// Stop stops unit and waits for the job, like Restart.
func (m *Manager) Stop(ctx context.Context, unit string) error {
	return waitJob(ctx, "stop", unit, func(ch chan<- string) error {
		_, err := m.conn.StopUnitContext(ctx, unit, "replace", ch)
		return err
	})
}

// waitJob enqueues a job through enqueue and waits for its result. The
// channel is buffered: go-systemd's signal dispatcher blocks every other job
// until its send is received, and nobody receives once ctx has ended.
func waitJob(ctx context.Context, verb, unit string, enqueue func(ch chan<- string) error) error {
	ch := make(chan string, 1)
	if err := enqueue(ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case result := <-ch:
		if result != "done" {
			return &JobError{Verb: verb, Unit: unit, Result: result}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s %s: %w", verb, unit, ctx.Err())
	}
}

// EnableRuntime enables units until the next reboot (symlinks under
// /run/systemd), replacing conflicting symlinks, as a package's postinst
// would for a persistent install. Call Reload afterwards so that systemd
// sees the new dependencies.
func (m *Manager) EnableRuntime(ctx context.Context, units []string) error {
	if _, _, err := m.conn.EnableUnitFilesContext(ctx, units, true, true); err != nil {
		return fmt.Errorf("enabling %v at runtime: %w", units, err)
	}
	return nil
}

// DisableRuntime removes the runtime enablement made by EnableRuntime.
func (m *Manager) DisableRuntime(ctx context.Context, units []string) error {
	if _, err := m.conn.DisableUnitFilesContext(ctx, units, true); err != nil {
		return fmt.Errorf("disabling %v at runtime: %w", units, err)
	}
	return nil
}

// InvocationID returns unit's current invocation ID as 32 hex digits; ""
// when the unit has not run since it was loaded. A restart changes it.
func (m *Manager) InvocationID(ctx context.Context, unit string) (string, error) {
	p, err := m.conn.GetUnitPropertyContext(ctx, unit, "InvocationID")
	if err != nil {
		return "", fmt.Errorf("reading InvocationID of %s: %w", unit, err)
	}
	return invocationID(p.Value.Value())
}

func invocationID(v any) (string, error) {
	b, ok := v.([]byte)
	if !ok {
		return "", fmt.Errorf("InvocationID has type %T, want []byte", v)
	}
	if len(b) == 0 {
		return "", nil
	}
	return hex.EncodeToString(b), nil
}

// ActiveState returns unit's ActiveState: "active", "inactive", "failed",
// "activating", "deactivating", "reloading".
func (m *Manager) ActiveState(ctx context.Context, unit string) (string, error) {
	p, err := m.conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return "", fmt.Errorf("reading ActiveState of %s: %w", unit, err)
	}
	s, ok := p.Value.Value().(string)
	if !ok {
		return "", fmt.Errorf("reading ActiveState of %s: type %T, want string", unit, p.Value.Value())
	}
	return s, nil
}

// Virtualization returns systemd's own virtualization detection, as
// systemd-detect-virt names it ("kvm", "vmware", "systemd-nspawn" ...), and
// "none" on bare metal.
func (m *Manager) Virtualization(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	raw, err := m.conn.GetManagerProperty("Virtualization")
	if err != nil {
		return "", fmt.Errorf("reading Virtualization: %w", err)
	}
	return virtualization(raw)
}

// virtualization decodes GetManagerProperty's GVariant text ("\"kvm\"").
func virtualization(raw string) (string, error) {
	v, err := strconv.Unquote(raw)
	if err != nil {
		return "", fmt.Errorf("decoding Virtualization %s: %w", raw, err)
	}
	if v == "" {
		return "none", nil
	}
	return v, nil
}

// Health is what a probation watches of a unit: ActiveState ("failed"
// fails it), the unit's Result ("success", "exit-code", "signal",
// "start-limit-hit" ...; "" for a unit type without one) and, for a
// service, NRestarts, the automatic restarts since it was last started by
// hand.
type Health struct {
	ActiveState string
	Result      string
	NRestarts   uint32
}

// Health reads unit's Health.
func (m *Manager) Health(ctx context.Context, unit string) (Health, error) {
	var h Health
	p, err := m.conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return h, fmt.Errorf("reading ActiveState of %s: %w", unit, err)
	}
	h.ActiveState, _ = p.Value.Value().(string)
	if !strings.HasSuffix(unit, ".service") {
		return h, nil
	}
	props, err := m.conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return h, fmt.Errorf("reading the service properties of %s: %w", unit, err)
	}
	return serviceHealth(h, props), nil
}

// serviceHealth fills Result and NRestarts from a service's properties.
func serviceHealth(h Health, props map[string]any) Health {
	h.Result, _ = props["Result"].(string)
	h.NRestarts, _ = props["NRestarts"].(uint32)
	return h
}
