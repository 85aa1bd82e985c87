package reliability

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
)

// TestConcurrentVerbs runs 20 mixed install/remove/update/list calls in
// parallel, plus a daemon cycle (sysextd --once, which installs gamma from
// its flag file), for 5 rounds. Every call must end with an exit code the
// CLI contract allows, and after each round the store must be consistent.
func TestConcurrentVerbs(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		b, srv := buildBins(t), newServers(t)
		w := newWorld(t, b, srv)
		if err := os.WriteFile(w.root.Path("/var/lib/flag-gamma"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		verbs := [][]string{
			{"install", "alpha"}, {"install", "beta"}, {"remove", "alpha"}, {"remove", "beta"},
			{"update"}, {"list", "--offline"}, {"list"}, {"install", "gamma"},
		}
		rng := rand.New(rand.NewPCG(1, 2))
		const rounds, calls = 5, 20
		for round := range rounds {
			var wg sync.WaitGroup
			errs := make(chan error, calls+1)
			for i := range calls {
				args := verbs[rng.IntN(len(verbs))]
				api := srv.old.URL()
				if rng.IntN(2) == 0 {
					api = srv.next.URL()
				}
				wg.Go(func() {
					o := w.start(b.ctl, api, "", 0, args...)
					// 0, or 1 for a refused conflicting install; never a
					// crash, a usage error or a partial failure.
					if o.code != 0 && !(o.code == 1 && strings.Contains(o.stderr, "conflict")) {
						errs <- fmt.Errorf("call %d %v: exit %d: %s", i, args, o.code, o.stderr)
					}
				})
			}
			wg.Go(func() {
				o := w.start(b.daemon, srv.old.URL(), "", 0, "--once")
				if o.code != 0 {
					errs <- fmt.Errorf("sysextd --once: exit %d: %s", o.code, o.stderr)
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("round %d: %v", round, err)
			}
			got, err := w.consistent()
			if err != nil {
				t.Fatalf("round %d: inconsistent after the calls: %v", round, err)
			}
			if got["alpha"] != "" && got["beta"] != "" {
				t.Errorf("round %d: conflicting alpha and beta both installed", round)
			}
			t.Logf("round %d: consistent, installed %s", round, got)
		}
	})
}

// TestUnprivilegedUserCannotBlock: a local user who flocks the lock file
// (flock(1) opens it read-only, which is enough for flock(2)) must not
// block any change.
func TestUnprivilegedUserCannotBlock(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			t.Skip("runuser (util-linux) not installed")
		}
		b, srv := buildBins(t), newServers(t)
		w := newWorld(t, b, srv)
		// Make the way to the root traversable, as / is on a host (t.TempDir
		// directories are 0700, which would hide the lock's own mode).
		os.Chmod(w.root.Dir(), 0o755)
		os.Chmod(filepath.Dir(w.root.Dir()), 0o755)
		w.ctl(srv.old.URL(), "install", "alpha")
		lock := store.Store{Root: w.root}.LockPath()
		// nobody can read the state (list works unprivileged)...
		if out, err := exec.Command(runuser, "-u", "nobody", "--", "cat", store.Store{Root: w.root}.StatePath()).CombinedOutput(); err != nil {
			t.Fatalf("nobody cannot read state.json, so this test proves nothing about the lock: %v: %s", err, out)
		}
		// ...but cannot hold the lock.
		holder := exec.Command(runuser, "-u", "nobody", "--", "flock", lock, "sleep", "60")
		out, err := holder.CombinedOutput()
		if err == nil {
			t.Fatalf("nobody took the lock %s: %s", lock, out)
		}
		t.Logf("nobody: flock %s: %v: %s", lock, err, strings.TrimSpace(string(out)))
		// And with a lock file nobody could open, the verbs still run.
		done := make(chan outcome, 1)
		go func() { done <- w.start(b.ctl, srv.next.URL(), "", 0, "update", "--no-block") }()
		select {
		case o := <-done:
			if o.code != 0 {
				t.Fatalf("update with --no-block: exit %d: %s", o.code, o.stderr)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("update blocked")
		}
		if got, err := w.consistent(); err != nil || got["alpha"] != alpha2 {
			t.Fatalf("after update: %v, %v", got, err)
		}
		fi, err := os.Stat(w.root.Path(rootfs.StateDir + "/staging"))
		if err == nil && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("staging directory mode %v: others can plant files in it", fi.Mode().Perm())
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Error(err)
		}
	})
}
