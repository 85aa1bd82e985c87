package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// crashAt runs the first n operations of a step and stops, as a SIGKILL
// after the n-th would. Operations: Begin, Keep, Take, Place, Commit.
func crashAt(t *testing.T, s Store, n int) {
	t.Helper()
	staged := stage(t, s, "new")
	ops := []func(tx **Txn) error{
		func(tx **Txn) (err error) {
			*tx, err = s.Begin(Intent{Op: "install", Name: "a", Images: []ImageIntent{{Image: "sysext-b"}, {Image: "sysext-a", Place: true}}})
			return err
		},
		func(tx **Txn) error { return (*tx).Keep() },
		func(tx **Txn) error { return (*tx).Take("sysext-b") },
		func(tx **Txn) error { return (*tx).Place(staged, "sysext-a") },
		func(tx **Txn) error {
			return (*tx).Commit(func(st *State) {
				delete(st.Extensions, "b")
				st.Extensions["a"] = &Record{Name: "a", Image: "sysext-a", Version: "new"}
			})
		},
	}
	var tx *Txn
	for _, op := range ops[:n] {
		if err := op(&tx); err != nil {
			t.Fatal(err)
		}
	}
}

// recoverFiles is what Engine.Recover does to the store.
func recoverFiles(t *testing.T, s Store) {
	t.Helper()
	p, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if p != nil {
		if err := s.UndoFiles(*p); err != nil {
			t.Fatal(err)
		}
		// Undo twice: a crash during an undo is undone again.
		if err := s.UndoFiles(*p); err != nil {
			t.Fatal(err)
		}
		if err := s.ClearPending(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Clean(); err != nil {
		t.Fatal(err)
	}
}

func TestCrashAtEveryOperation(t *testing.T) {
	for _, previous := range []bool{true, false} {
		for n := 0; n <= 5; n++ {
			t.Run(fmt.Sprintf("previous=%v/ops=%d", previous, n), func(t *testing.T) {
				s := newStore(t)
				st := &State{Extensions: map[string]*Record{"b": {Name: "b", Image: "sysext-b", Version: "b1"}}}
				if previous {
					st.Extensions["a"] = &Record{Name: "a", Image: "sysext-a", Version: "old"}
					writeImage(t, s, "sysext-a", "old")
				}
				writeImage(t, s, "sysext-b", "b1")
				if err := s.SaveState(st); err != nil {
					t.Fatal(err)
				}
				crashAt(t, s, n)
				recoverFiles(t, s)

				got, _ := s.LoadState()
				committed := n == 5
				wantA, wantB := "old", "b1"
				if !previous {
					wantA = "<missing>"
				}
				if committed {
					wantA, wantB = "new", "<missing>"
				}
				if a := readOr(s.ImagePath("sysext-a")); a != wantA {
					t.Errorf("sysext-a = %q, want %q", a, wantA)
				}
				if b := readOr(s.ImagePath("sysext-b")); b != wantB {
					t.Errorf("sysext-b = %q, want %q", b, wantB)
				}
				if got.Pending != nil {
					t.Errorf("intent still pending: %+v", got.Pending)
				}
				// state.json agrees with the store.
				for _, img := range []string{"sysext-a", "sysext-b"} {
					onDisk := readOr(s.ImagePath(img)) != "<missing>"
					if inState := got.ByImage(img) != nil; inState != onDisk {
						t.Errorf("%s: in state %v, on disk %v", img, inState, onDisk)
					}
				}
				if a := got.Extensions["a"]; a != nil && a.Version != readOr(s.ImagePath("sysext-a")) {
					t.Errorf("state says a %s, store holds %s", a.Version, readOr(s.ImagePath("sysext-a")))
				}
				for _, dir := range []string{backupDir, stagingDir} {
					if entries, _ := os.ReadDir(s.Root.Path(dir)); len(entries) != 0 {
						t.Errorf("%s not empty after recovery: %v", dir, entries)
					}
				}
			})
		}
	}
}

func TestBeginRefusesWhilePending(t *testing.T) {
	s := newStore(t)
	if _, err := s.Begin(Intent{Op: "remove", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Begin(Intent{Op: "remove", Name: "b"}); err == nil || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("second Begin = %v, want a pending error", err)
	}
	if _, err := s.Clean(); err == nil {
		t.Fatal("Clean ran while a step is pending: it could drop the only copy of an image")
	}
}

func TestWritesStayInsideTheRoot(t *testing.T) {
	s := newStore(t)
	outside := t.TempDir()
	if err := os.MkdirAll(s.Root.Path("/var/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, s.Root.Path(rootfs.StateDir)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState(&State{Extensions: map[string]*Record{}}); err == nil {
		t.Error("SaveState followed a symlink out of the root")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written outside the root: %v", entries)
	}
}

func TestLockIsRootOnly(t *testing.T) {
	s := newStore(t)
	os.MkdirAll(filepath.Dir(s.LockPath()), 0o755)
	os.WriteFile(s.LockPath(), nil, 0o644) // as an older release left it
	release, err := s.Lock(t.Context(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	release()
	fi, err := os.Stat(s.LockPath())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock mode = %v, want 0600: anyone who can open it can flock it", fi.Mode().Perm())
	}
}

func writeImage(t *testing.T, s Store, image, content string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(s.ImagePath(image)), 0o755)
	if err := os.WriteFile(s.ImagePath(image), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readOr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<missing>"
	}
	return string(b)
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
