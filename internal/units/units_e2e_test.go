//go:build e2e

package units

// Tier 3 (SPEC §13): run INSIDE the booted trixie container, where systemd
// is PID 1 and the system bus is up:
//
//	go test -tags e2e -c -o units.e2e ./internal/units && (copy in) ./units.e2e -test.v
//
// It writes throwaway units into /run/systemd/system and removes them.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const e2eUnitDir = "/run/systemd/system"

func connectE2E(t *testing.T) *Manager {
	t.Helper()
	m, err := Connect(t.Context())
	if err != nil {
		t.Fatalf("Connect: %v (run this inside the booted container)", err)
	}
	t.Cleanup(m.Close)
	return m
}

// writeUnit installs a runtime unit and reloads systemd; removed on cleanup.
func writeUnit(t *testing.T, m *Manager, name, body string) {
	t.Helper()
	p := filepath.Join(e2eUnitDir, name)
	if err := os.MkdirAll(e2eUnitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = m.Stop(ctx, name)
		_ = m.DisableRuntime(ctx, []string{name})
		_ = os.Remove(p)
		_ = m.Reload(ctx)
	})
	if err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestE2EVirtualization(t *testing.T) {
	m := connectE2E(t)
	got, err := m.Virtualization(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got != "systemd-nspawn" {
		t.Errorf("Virtualization() = %q, want systemd-nspawn inside the e2e container", got)
	}
}

func TestE2ERestartChangesInvocation(t *testing.T) {
	m := connectE2E(t)
	ctx := t.Context()
	const unit = "sysextd-e2e-ok.service"
	writeUnit(t, m, unit, "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n")

	if err := m.Start(ctx, unit); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if got, err := m.ActiveState(ctx, unit); err != nil || got != "active" {
		t.Fatalf("ActiveState after Start = %q, %v; want active", got, err)
	}
	before, err := m.InvocationID(ctx, unit)
	if err != nil || len(before) != 32 {
		t.Fatalf("InvocationID = %q, %v; want 32 hex digits", before, err)
	}
	if err := m.Restart(ctx, unit); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	after, err := m.InvocationID(ctx, unit)
	if err != nil || after == before {
		t.Errorf("InvocationID after Restart = %q, %v; want a new one (before %q)", after, err, before)
	}
	if err := m.Stop(ctx, unit); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got, _ := m.ActiveState(ctx, unit); got != "inactive" {
		t.Errorf("ActiveState after Stop = %q, want inactive", got)
	}

	if err := m.EnableRuntime(ctx, []string{unit}); err != nil {
		t.Fatalf("EnableRuntime: %v", err)
	}
	link := filepath.Join(e2eUnitDir, "multi-user.target.wants", unit)
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("EnableRuntime left no symlink %s: %v", link, err)
	}
	if err := m.DisableRuntime(ctx, []string{unit}); err != nil {
		t.Fatalf("DisableRuntime: %v", err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DisableRuntime left %s: %v", link, err)
	}
}

func TestE2ERestartFailureIsJobError(t *testing.T) {
	m := connectE2E(t)
	const unit = "sysextd-e2e-fail.service"
	writeUnit(t, m, unit, "[Service]\nType=oneshot\nExecStart=/bin/false\n")

	err := m.Restart(t.Context(), unit)
	var jerr *JobError
	if !errors.As(err, &jerr) || jerr.Result != "failed" || jerr.Unit != unit {
		t.Fatalf("Restart of a failing unit = %v, want JobError with result failed", err)
	}
}

// TestE2EHealthCountsRestarts: what a probation reads of a crashing
// service, from the real systemd: NRestarts grows with each automatic
// restart, and a unit that gives up is "failed" with its Result.
func TestE2EHealthCountsRestarts(t *testing.T) {
	m := connectE2E(t)
	const unit = "sysextd-e2e-crashloop.service"
	writeUnit(t, m, unit, "[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=60\n[Service]\nExecStart=/bin/sh -c 'sleep 0.2; exit 3'\nRestart=on-failure\nRestartSec=100ms\n")
	t.Cleanup(func() { _ = m.Stop(context.Background(), unit) })
	if err := m.Start(t.Context(), unit); err != nil {
		t.Fatalf("Start: %v", err)
	}
	h0, err := m.Health(t.Context(), unit)
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	if h0.NRestarts != 0 || h0.ActiveState != "active" {
		t.Errorf("just started: %+v, want active with 0 restarts", h0)
	}
	var h Health
	for range 100 {
		if h, err = m.Health(t.Context(), unit); err != nil {
			t.Fatalf("Health: %v", err)
		}
		if h.ActiveState == "failed" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("after the crash loop: %+v", h)
	if h.ActiveState != "failed" || h.NRestarts < 2 || h.Result == "success" {
		t.Errorf("after the crash loop: %+v, want failed, ≥2 restarts, a result other than success", h)
	}
}

// writeUnitKeepingMtimes writes files (path under RuntimeUnitDir -> content)
// and puts back the modification times of RuntimeUnitDir and of every
// directory it creates' parent, as a merge under an unchanged topmost
// overlay layer leaves them: systemd's unit path cache then sees no
// change. Removed, with a reload, on cleanup.
func writeUnitKeepingMtimes(t *testing.T, m *Manager, unit string, files map[string]string) {
	t.Helper()
	fi, err := os.Stat(e2eUnitDir)
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		full := filepath.Join(e2eUnitDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(e2eUnitDir, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = m.Stop(ctx, unit)
		for p := range files {
			_ = os.RemoveAll(filepath.Join(e2eUnitDir, strings.SplitN(p, "/", 2)[0]))
		}
		_ = m.Reload(ctx)
	})
}

// TestE2ERescanLoadsWithoutReload asks systemd what the daemon's start
// relies on to skip the daemon-reload (engine.startUnitsUnloaded): a unit
// file that appears without changing any unit directory's mtime is "not
// found" to a manager that has not reloaded, and RescanUnitPaths makes the
// next load find it, drop-ins included, with no reload. Loaded sees units
// the manager holds, and does not load the ones it asks about.
func TestE2ERescanLoadsWithoutReload(t *testing.T) {
	m := connectE2E(t)
	ctx := t.Context()
	// A reload, then a load (of a unit that does not exist), make the
	// manager's path cache match the directories as they are now.
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ActiveState(ctx, "sysextd-e2e-nothing.service"); err != nil {
		t.Fatal(err)
	}
	const body = "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'test \"$FROM_DROPIN\" = yes'\n"
	const dropIn = "[Service]\nEnvironment=FROM_DROPIN=yes\n"

	stale := "sysextd-e2e-stale.service"
	writeUnitKeepingMtimes(t, m, stale, map[string]string{stale: body, stale + ".d/10-env.conf": dropIn})
	var jerr *JobError
	if err := m.Start(ctx, stale); err == nil || errors.As(err, &jerr) {
		t.Fatalf("Start of a unit added under unchanged mtimes = %v; want systemd's 'not found' (its path cache is stale)", err)
	} else {
		t.Logf("as expected, without a rescan: %v", err)
	}

	fresh := "sysextd-e2e-fresh.service"
	writeUnitKeepingMtimes(t, m, fresh, map[string]string{fresh: body, fresh + ".d/10-env.conf": dropIn})
	held, err := m.Loaded(ctx, []string{fresh, stale, "multi-user.target"})
	if err != nil {
		t.Fatal(err)
	}
	// The failed start's not-found unit is gone again: nothing refers to it.
	if want := []string{"multi-user.target"}; !sameSet(held, want) {
		t.Fatalf("Loaded = %q, want %q", held, want)
	}
	if held, err := m.Loaded(ctx, []string{fresh}); err != nil || len(held) != 0 {
		t.Fatalf("Loaded asked twice about %s = %q, %v: asking must not load it", fresh, held, err)
	}
	if err := m.RescanUnitPaths(); err != nil {
		t.Fatal(err)
	}
	// The unit's ExecStart succeeds only with the drop-in's environment.
	if err := m.Start(ctx, fresh); err != nil {
		t.Fatalf("Start after RescanUnitPaths, without a reload: %v", err)
	}
	if got, err := m.ActiveState(ctx, fresh); err != nil || got != "active" {
		t.Fatalf("ActiveState = %q, %v; want active", got, err)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x]--; seen[x] < 0 {
			return false
		}
	}
	return true
}
