package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// manyUnits builds a squashfs whose usr/lib/systemd/system holds n
// enableable unit files (issue 9: 100,000 of them validated for over 60 s).
func manyUnits(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	stage := filepath.Join(dir, "stage")
	units := filepath.Join(stage, "usr/lib/systemd/system")
	rel := filepath.Join(stage, "usr/lib/extension-release.d")
	for _, d := range []string{units, rel} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rel, "extension-release.many"), []byte("ID=debian\nVERSION_ID=13\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	body := []byte("[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
	for i := range n {
		if err := os.WriteFile(filepath.Join(units, fmt.Sprintf("u%06d.service", i)), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "many.raw")
	out, err := exec.CommandContext(t.Context(), "mksquashfs", stage, img, "-noappend", "-all-root", "-no-progress", "-quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	return img
}

// TestInspectBounded: an image past the entry limit is refused quickly, one
// just under it is read in bounded time, and a cancelled context stops a
// read in progress. The limit is lowered to 2,000 so the images build in
// seconds; SYSEXTD_BIG=1 runs it at the real MaxEntries against 100,000
// unit files (about 3.5 min, mostly writing the files; docs/extension-release.md
// has the figures).
func TestInspectBounded(t *testing.T) {
	n, under := 5000, 1900
	if os.Getenv("SYSEXTD_BIG") == "1" {
		n, under = 100000, MaxEntries-1000
	} else {
		old := maxEntries
		maxEntries = 2000
		t.Cleanup(func() { maxEntries = old })
	}
	huge := manyUnits(t, n)
	start := time.Now()
	_, err := InspectContext(t.Context(), huge)
	took := time.Since(start)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d units: error = %v, want ErrTooLarge", n, err)
	}
	t.Logf("%d unit files refused in %s: %v", n, took.Round(time.Millisecond), err)
	if took > 10*time.Second {
		t.Errorf("refusing %d unit files took %s, want < 10 s", n, took)
	}

	big := manyUnits(t, under)
	start = time.Now()
	info, err := InspectContext(t.Context(), big)
	took = time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d unit files read in %s", len(info.Units), took.Round(time.Millisecond))
	if len(info.Units) != under || took > 30*time.Second {
		t.Errorf("read %d units in %s, want %d in < 30 s", len(info.Units), took, under)
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(took/4, cancel)
	defer cancel()
	start = time.Now()
	_, err = InspectContext(ctx, big)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled after %s: error = %v, want context.Canceled", took/4, err)
	}
	if since := time.Since(start); since > took/4+time.Second {
		t.Errorf("cancel took effect after %s, want within 1 s of the cancel", since)
	}
}
