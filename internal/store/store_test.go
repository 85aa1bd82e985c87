package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

func newStore(t *testing.T) Store {
	t.Helper()
	return Store{Root: rootfs.New(t.TempDir())}
}

func stage(t *testing.T, s Store, content string) string {
	t.Helper()
	dir, err := s.StagingDir()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "dl-*")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(content)
	f.Close()
	return f.Name()
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestStateRoundTrip(t *testing.T) {
	s := newStore(t)
	st, err := s.LoadState()
	if err != nil || len(st.Extensions) != 0 {
		t.Fatalf("empty LoadState = %v, %v", st, err)
	}
	st.Extensions["hello"] = &Record{Name: "hello", Image: "sysext-hello", Version: "2.10-3", InstalledBy: ByAuto}
	if err := s.SaveState(st); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.StatePath())
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("state file mode = %v, %v; want 0644", fi, err)
	}
	got, err := s.LoadState()
	if err != nil || got.Extensions["hello"].Version != "2.10-3" || got.ByImage("sysext-hello") == nil {
		t.Fatalf("LoadState = %+v, %v", got, err)
	}
	leftovers, _ := filepath.Glob(filepath.Dir(s.StatePath()) + "/.state.json.*")
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	os.WriteFile(s.StatePath(), []byte("{"), 0o644)
	if _, err := s.LoadState(); err == nil {
		t.Error("corrupt state accepted")
	}
}

func TestPlaceUndoCommit(t *testing.T) {
	s := newStore(t)
	c1, err := s.Place(stage(t, s, "v1"), "sysext-a")
	if err != nil || c1.HadPrevious() {
		t.Fatalf("first Place = %v, %v", c1, err)
	}
	if got := read(t, s.ImagePath("sysext-a")); got != "v1" {
		t.Fatalf("image = %q", got)
	}
	c2, err := s.Place(stage(t, s, "v2"), "sysext-a")
	if err != nil || !c2.HadPrevious() {
		t.Fatalf("second Place = %v, %v", c2, err)
	}
	if got := read(t, s.ImagePath("sysext-a")); got != "v2" {
		t.Fatalf("image = %q, want v2", got)
	}
	if err := c2.Undo(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s.ImagePath("sysext-a")); got != "v1" {
		t.Fatalf("after Undo image = %q, want v1", got)
	}
	c3, _ := s.Place(stage(t, s, "v3"), "sysext-a")
	if err := c3.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.backupPath("sysext-a")); !os.IsNotExist(err) {
		t.Errorf("backup still present after Commit: %v", err)
	}
	take, err := s.Take("sysext-a")
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := s.Installed(); len(names) != 0 {
		t.Errorf("Installed after Take = %v", names)
	}
	take.Undo()
	if names, _ := s.Installed(); len(names) != 1 || names[0] != "sysext-a" {
		t.Errorf("Installed after Undo = %v", names)
	}
	c4, _ := s.Place(stage(t, s, "new"), "sysext-b")
	c4.Undo()
	if _, err := os.Stat(s.ImagePath("sysext-b")); !os.IsNotExist(err) {
		t.Errorf("Undo of a first install left the image: %v", err)
	}
}

func TestLock(t *testing.T) {
	s := newStore(t)
	release, err := s.Lock(t.Context(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(t.Context(), false, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second non-blocking Lock = %v, want ErrLocked", err)
	}
	waited := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		r, err := s.Lock(context.Background(), true, func() { close(waited) })
		if err == nil {
			r()
		}
		got <- err
	}()
	<-waited
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("blocking Lock = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking Lock never got the lock after release")
	}
	ctx, cancel := context.WithCancel(t.Context())
	r, _ := s.Lock(t.Context(), false, nil)
	defer r()
	cancel()
	if _, err := s.Lock(ctx, true, nil); err == nil {
		t.Error("Lock with a cancelled context succeeded while held")
	}
}

func TestRebootRequired(t *testing.T) {
	s := newStore(t)
	if len(RebootPending(s.Root)) != 0 {
		t.Fatal("pending on an empty root")
	}
	for _, p := range []string{"a", "b", "a"} {
		if err := MarkRebootRequired(s.Root, p); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, s.Root.Path(rootfs.RebootRequiredPkgs)); got != "a\nb\n" {
		t.Errorf("pkgs = %q, want each package once", got)
	}
	if p := RebootPending(s.Root); !p["a"] || !p["b"] || len(p) != 2 {
		t.Errorf("RebootPending = %v", p)
	}
	os.Remove(s.Root.Path(rootfs.RebootRequired))
	if len(RebootPending(s.Root)) != 0 {
		t.Error("pending without /run/reboot-required")
	}
}
