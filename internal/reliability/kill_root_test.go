package reliability

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
)

// scenario is one verb run from a known starting point.
type scenario struct {
	name string
	op   string // the step's operation, which names its failpoints
	// setup brings a fresh world to the starting point.
	setup func(w *world)
	api   func(s servers) string
	args  []string
	// before and after are what may be installed when the verb did not
	// happen or happened; the run converges on after.
	before, after versions
}

var scenarios = []scenario{
	{
		name: "install", op: "install", setup: func(*world) {},
		api: func(s servers) string { return s.old.URL() }, args: []string{"install", "alpha"},
		before: versions{}, after: versions{"alpha": alpha1},
	},
	{
		name: "update", op: "update",
		setup: func(w *world) { w.ctl(w.srv.old.URL(), "install", "alpha") },
		api:   func(s servers) string { return s.next.URL() }, args: []string{"update", "alpha"},
		before: versions{"alpha": alpha1}, after: versions{"alpha": alpha2},
	},
	{
		name: "remove", op: "remove",
		setup: func(w *world) { w.ctl(w.srv.old.URL(), "install", "alpha") },
		api:   func(s servers) string { return s.old.URL() }, args: []string{"remove", "alpha"},
		before: versions{"alpha": alpha1}, after: versions{},
	},
	{
		name: "install-conflict", op: "install",
		setup: func(w *world) { w.ctl(w.srv.old.URL(), "install", "beta") },
		api:   func(s servers) string { return s.old.URL() }, args: []string{"install", "alpha"},
		before: versions{"beta": beta1}, after: versions{"alpha": alpha1},
	},
}

// failpoints lists every phase boundary of op, plus a kill while
// systemd-sysext refresh runs.
func failpoints(op string) []string {
	phases := []string{"download", "verify", "place", "payload", "activate", "units", "action", "commit"}
	if op == "remove" {
		phases = []string{"place", "payload", "activate", "units", "commit"}
	}
	var out []string
	for _, p := range phases {
		out = append(out, op+":"+p+":before", op+":"+p+":after")
	}
	return append(out, "refresh:running")
}

// tally counts kills that held, per scenario and moment.
type tally struct {
	mu    sync.Mutex
	Tried map[string]int `json:"tried"`
	Held  map[string]int `json:"held"`
}

func (t *tally) add(key string, held bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Tried == nil {
		t.Tried, t.Held = map[string]int{}, map[string]int{}
	}
	t.Tried[key]++
	if held {
		t.Held[key]++
	}
}

func (t *tally) report(tb testing.TB, name string) {
	keys := make([]string, 0, len(t.Tried))
	for k := range t.Tried {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	tried, held := 0, 0
	for _, k := range keys {
		tried += t.Tried[k]
		held += t.Held[k]
		tb.Logf("%s %-40s %d/%d held", name, k, t.Held[k], t.Tried[k])
	}
	tb.Logf("%s: %d of %d kills held", name, held, tried)
	if dir := os.Getenv("RELIABILITY_REPORT_DIR"); dir != "" {
		b, _ := json.MarshalIndent(t, "", "  ")
		os.WriteFile(dir+"/"+name+".json", b, 0o644)
	}
}

// killAndCheck runs sc in a fresh world, kills the verb (at failpoint fp,
// or after delay), recovers, checks, and converges. It returns whether the
// process was really killed, and every violation found.
func killAndCheck(t *testing.T, b bins, srv servers, sc scenario, fp string, delay time.Duration) (killed bool, errs []string) {
	t.Helper()
	w := newWorld(t, b, srv)
	sc.setup(w)
	api := sc.api(srv)
	o := w.start(b.ctl, api, fp, delay, sc.args...)
	if !o.killed {
		if fp != "" {
			errs = append(errs, fmt.Sprintf("failpoint %s was never reached (exit %d): %s", fp, o.code, o.stderr))
		}
		return false, errs
	}
	if r := w.start(b.ctl, api, "", 0, "recover"); r.code != 0 {
		errs = append(errs, fmt.Sprintf("recover: exit %d: %s", r.code, r.stderr))
	}
	got, err := w.consistent()
	if err != nil {
		errs = append(errs, "after recover: "+err.Error())
	} else if got.String() != sc.before.String() && got.String() != sc.after.String() {
		errs = append(errs, fmt.Sprintf("after recover: installed %s, want %s or %s", got, sc.before, sc.after))
	}
	if r := w.start(b.ctl, api, "", 0, sc.args...); r.code != 0 {
		errs = append(errs, fmt.Sprintf("repeating %v: exit %d: %s", sc.args, r.code, r.stderr))
	}
	got, err = w.consistent()
	if err != nil {
		errs = append(errs, "after repeating the verb: "+err.Error())
	} else if got.String() != sc.after.String() {
		errs = append(errs, fmt.Sprintf("after repeating the verb: installed %s, want %s", got, sc.after))
	}
	return true, errs
}

// TestKillAtEveryPhase kills sysextctl with SIGKILL at every phase
// boundary of install, update, remove and an install that removes a
// conflicting extension, and once while systemd-sysext refresh runs. After
// `recover` exactly the old or the new version must be merged, state.json
// must agree with the store, no stray file may remain, the lock must be
// free, and repeating the verb must converge.
func TestKillAtEveryPhase(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		b, srv := buildBins(t), newServers(t)
		var tl tally
		for _, sc := range scenarios {
			for _, fp := range failpoints(sc.op) {
				t.Run(sc.name+"/"+fp, func(t *testing.T) {
					_, errs := killAndCheck(t, b, srv, sc, fp, 0)
					tl.add(sc.name+" "+fp, len(errs) == 0)
					for _, e := range errs {
						t.Error(e)
					}
				})
			}
		}
		tl.report(t, "phases")
	})
}

// TestKillAtRandom kills sysextctl at random moments of the same
// scenarios: RELIABILITY_KILLS (default 200) kills that landed while the
// verb ran. The seed is logged; RELIABILITY_SEED replays a run.
func TestKillAtRandom(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		want := envInt("RELIABILITY_KILLS", 200)
		seed := uint64(envInt("RELIABILITY_SEED", int(time.Now().UnixNano()%1e9)))
		t.Logf("seed %d (RELIABILITY_SEED=%d replays this run)", seed, seed)
		rng := rand.New(rand.NewPCG(seed, seed))
		b, srv := buildBins(t), newServers(t)
		// How long each verb takes when left alone: kills land in [0, that).
		took := map[string]time.Duration{}
		for _, sc := range scenarios {
			w := newWorld(t, b, srv)
			sc.setup(w)
			took[sc.name] = w.ctl(sc.api(srv), sc.args...).took
			t.Logf("%s takes %v uninterrupted", sc.name, took[sc.name])
		}
		var tl tally
		kills, attempts := 0, 0
		for kills < want && attempts < 3*want {
			attempts++
			sc := scenarios[rng.IntN(len(scenarios))]
			delay := time.Duration(rng.Int64N(int64(took[sc.name]))) + time.Millisecond
			killed, errs := killAndCheck(t, b, srv, sc, "", delay)
			if !killed {
				continue
			}
			kills++
			tl.add(sc.name, len(errs) == 0)
			for _, e := range errs {
				t.Errorf("%s killed after %v: %s", sc.name, delay, e)
			}
		}
		tl.report(t, "random")
		if kills < want {
			t.Fatalf("only %d of %d attempts were killed while running, want %d kills", kills, attempts, want)
		}
	})
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(strings.TrimSpace(os.Getenv(name))); err == nil && v > 0 {
		return v
	}
	return def
}
