package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"

	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
	"github.com/spamtagger/sysextd/internal/units"
)

// recorder is the one call log every fake writes to, so that tests can
// assert the order of what happened across the store, systemd and units.
type recorder struct {
	calls  []string
	onCall func(n int) // probation_test.go: a crash at the n-th call
}

func (r *recorder) add(format string, a ...any) {
	r.calls = append(r.calls, fmt.Sprintf(format, a...))
	if r.onCall != nil {
		r.onCall(len(r.calls))
	}
}

// failures scripts errors by call ("refresh#2", "start alpha.service").
type failures map[string]error

// fakeSource serves prebuilt images by asset name.
type fakeSource struct {
	rec      *recorder
	releases map[string]*source.Release
	// older are the releases publish replaced, newest first: a request's
	// Skip reaches them, as a real source's list does.
	older map[string][]*source.Release
	files map[string]string // asset name -> image path
	fail  failures
}

func (s *fakeSource) LatestAll(_ context.Context, reqs []source.Request, t source.Target) map[string]source.Result {
	out := map[string]source.Result{}
	for _, r := range reqs {
		rel := s.releases[r.Name]
		if t.Codename != "" && t.Codename != "trixie" {
			rel = s.releases[r.Name+"@"+t.Codename]
		}
		if rel != nil && r.Skips(rel.Tag) {
			rel = nil
			for _, o := range s.older[r.Name] {
				if !r.Skips(o.Tag) {
					rel = o
					break
				}
			}
			if rel == nil {
				out[r.Name] = source.Result{Err: fmt.Errorf("%s: %w", r.Name, source.ErrAllSkipped)}
				continue
			}
		}
		if rel != nil {
			out[r.Name] = source.Result{Release: rel}
		} else {
			out[r.Name] = source.Result{Err: errors.New("no release")}
		}
	}
	return out
}

func (s *fakeSource) Cached(req source.Request, _ source.Target) (*source.Release, error) {
	if rel := s.releases[req.Name]; rel != nil {
		return rel, nil
	}
	return nil, source.ErrNotCached
}

func (s *fakeSource) Fetch(_ context.Context, a source.Asset) ([]byte, error) {
	s.rec.add("fetch %s", a.Name)
	if err := s.fail["fetch "+a.Name]; err != nil {
		return nil, err
	}
	return os.ReadFile(s.files[a.Name])
}

func (s *fakeSource) Download(_ context.Context, a source.Asset, dir string) (*source.Downloaded, error) {
	s.rec.add("download %s", a.Name)
	if err := s.fail["download "+a.Name]; err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.files[a.Name])
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, ".dl-"+a.Name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return &source.Downloaded{Path: p, SHA256: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// fakeMerger "merges" every image in the store except those it is told
// systemd would skip.
type fakeMerger struct {
	rec     *recorder
	root    rootfs.Root
	skip    map[string]bool
	skipAt  map[int]string // refresh number -> image skipped by that refresh only
	fail    failures
	n       int
	current []string
}

func (m *fakeMerger) Refresh(context.Context) error {
	m.n++
	m.rec.add("refresh")
	if err := m.fail[fmt.Sprintf("refresh#%d", m.n)]; err != nil {
		return err
	}
	imgs, _ := store.Store{Root: m.root}.Installed()
	m.current = nil
	for _, i := range imgs {
		if !m.skip[i] && m.skipAt[m.n] != i {
			m.current = append(m.current, i)
		}
	}
	slices.Sort(m.current)
	return nil
}

func (m *fakeMerger) Merged(context.Context) ([]string, error) { return slices.Clone(m.current), nil }

// Why answers as systemd does at debug level for a skipped image.
func (m *fakeMerger) Why(_ context.Context, images []string) string {
	m.rec.add("why %s", strings.Join(images, " "))
	return "Extension '" + images[0] + "' is for OS '11', but deployed on top of '13'."
}

type fakeUnits struct {
	rec    *recorder
	fail   failures
	health map[string]units.Health // probation_test.go
}

func (u *fakeUnits) do(call string) error {
	u.rec.add("%s", call)
	return u.fail[call]
}
func (u *fakeUnits) Reload(context.Context) error { return u.do("reload") }

func (u *fakeUnits) Start(_ context.Context, n string) error {
	return u.do("start " + n)
}
func (u *fakeUnits) StartAll(ctx context.Context, ns []string) error {
	for _, n := range ns {
		if err := u.Start(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
func (u *fakeUnits) Stop(_ context.Context, n string) error { return u.do("stop " + n) }
func (u *fakeUnits) Restart(_ context.Context, n string) error {
	return u.do("restart " + n)
}
func (u *fakeUnits) EnableRuntime(_ context.Context, ns []string) error {
	return u.do("enable " + strings.Join(ns, " "))
}
func (u *fakeUnits) DisableRuntime(_ context.Context, ns []string) error {
	return u.do("disable " + strings.Join(ns, " "))
}

// bench is an engine wired to the fakes over a temporary root.
type bench struct {
	t   testing.TB
	e   *Engine
	rec *recorder
	src *fakeSource
	mg  *fakeMerger
	un  *fakeUnits
}

const benchManifest = `[alpha]
url = "https://github.com/o/sysext-alpha"
conflicts = ["beta"]
update = "service: alpha.service"

[beta]
url = "https://github.com/o/sysext-beta"
`

func newBench(t testing.TB) *bench {
	t.Helper()
	root := rootfs.New(t.TempDir())
	entries, _, errs := manifest.Parse("sysext.toml", []byte(benchManifest))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	set := &manifest.Set{Entries: map[string]*manifest.Entry{}}
	for _, en := range entries {
		set.Entries[en.Name] = en
	}
	rel := sqfs.DefaultRelease("x")
	f := &facts.Facts{Arch: rel["ARCH"]}
	f.OS.ID, f.OS.VersionID, f.OS.VersionCodename = "debian", "13", "trixie"
	rec := &recorder{}
	b := &bench{t: t, rec: rec,
		src: &fakeSource{rec: rec, releases: map[string]*source.Release{}, files: map[string]string{}, fail: failures{}},
		mg:  &fakeMerger{rec: rec, root: root, skip: map[string]bool{}, fail: failures{}},
		un:  &fakeUnits{rec: rec, fail: failures{}},
	}
	b.e = &Engine{Root: root, Manifests: set, Facts: f, Source: b.src, Sysext: b.mg, Units: b.un, Now: func() time.Time { return time.Unix(0, 0) }}
	return b
}

// publish builds an image of name at version; units lists enableable
// units it ships.
func (b *bench) publish(name, version string, units ...string) {
	b.t.Helper()
	b.publishWith(name, version, nil, units...)
}

// publishWith is publish with extra files in the image.
func (b *bench) publishWith(name, version string, extra map[string]string, units ...string) {
	b.t.Helper()
	img := "sysext-" + name
	fields := sqfs.DefaultRelease(img)
	fields["PACKAGE_VERSION"] = version
	files := map[string]string{"usr/share/" + name + "/version": version}
	maps.Copy(files, extra)
	for _, u := range units {
		files["usr/lib/systemd/system/"+u] = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
	}
	asset := img + "_" + version + ".squashfs"
	b.src.files[asset] = sqfs.Build(b.t, b.t.TempDir(), sqfs.Spec{Name: img, Release: fields, Files: files})
	if prev := b.src.releases[name]; prev != nil {
		if b.src.older == nil {
			b.src.older = map[string][]*source.Release{}
		}
		b.src.older[name] = append([]*source.Release{prev}, b.src.older[name]...)
	}
	b.src.releases[name] = &source.Release{Name: name, Tag: "t" + version, Version: version, BuildTime: fields["BUILD_TIME"],
		Fields: fields, Image: source.Asset{Name: asset}}
}

func (b *bench) apply(verb string, names ...string) Result {
	b.t.Helper()
	if _, err := b.e.Recover(context.Background()); err != nil {
		b.t.Fatalf("Recover: %v", err)
	}
	p, err := b.e.MakePlan(context.Background(), verb, names)
	if err != nil {
		b.t.Fatalf("plan %s %v: %v", verb, names, err)
	}
	rs := b.e.Apply(context.Background(), p)
	if len(rs) != 1 {
		b.t.Fatalf("%s %v: %d results, want 1: %+v", verb, names, len(rs), rs)
	}
	return rs[0]
}

// installed returns name -> version from the state, checking it against
// the store and what is merged.
func (b *bench) installed() map[string]string {
	b.t.Helper()
	st := store.Store{Root: b.e.Root}
	state, err := st.LoadState()
	if err != nil {
		b.t.Fatal(err)
	}
	if state.Pending != nil {
		b.t.Errorf("intent left pending: %+v", state.Pending)
	}
	out := map[string]string{}
	var want []string
	for n, r := range state.Extensions {
		out[n] = r.Version
		want = append(want, r.Image)
		got, _ := os.ReadFile(st.ImagePath(r.Image))
		if len(got) == 0 {
			b.t.Errorf("state has %s but its image is missing", n)
		}
	}
	slices.Sort(want)
	if imgs, _ := st.Installed(); !slices.Equal(sortCopy(imgs), want) {
		b.t.Errorf("store holds %v, state says %v", imgs, want)
	}
	if !slices.Equal(b.mg.current, want) {
		b.t.Errorf("merged %v, state says %v", b.mg.current, want)
	}
	for _, d := range []string{rootfs.StateDir + "/backup", rootfs.StateDir + "/staging"} {
		if es, _ := os.ReadDir(b.e.Root.Path(d)); len(es) > 0 {
			b.t.Errorf("%s not empty: %d entries", d, len(es))
		}
	}
	return out
}

func sortCopy(s []string) []string { c := slices.Clone(s); slices.Sort(c); return c }

// calls returns the recorded calls matching re since mark.
func (b *bench) calls(mark int, re string) []string {
	var out []string
	rx := regexp.MustCompile(re)
	for _, c := range b.rec.calls[mark:] {
		if rx.MatchString(c) {
			out = append(out, c)
		}
	}
	return out
}

// TestEveryFailureRollsBack drives each phase of an update into failure and
// checks that the previous version is back, merged, with its units running
// again and the new image's units stopped and disabled, and that every undo
// error reaches the result.
func TestEveryFailureRollsBack(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(b *bench)
		phase     Phase
		rolled    bool   // the host was changed, then undone
		wantInErr string // part of the result's error
	}{
		{"download", func(b *bench) { b.src.fail["download sysext-alpha_2.squashfs"] = errors.New("connection reset") }, PhaseDownload, false, "connection reset"},
		{"download: release.json disagrees with the .manifest", func(b *bench) {
			f := filepath.Join(b.t.TempDir(), "release.json")
			if err := os.WriteFile(f, []byte(`{"package_versions": {"trixie_amd64": "3"}}`), 0o644); err != nil {
				b.t.Fatal(err)
			}
			b.src.files["release.json"] = f
			b.src.releases["alpha"].Assets = map[string]source.Asset{"release.json": {Name: "release.json"}}
		}, PhaseDownload, false, `release.json says package version "3" for trixie_amd64`},
		{"verify: .manifest disagrees with the image", func(b *bench) { b.src.releases["alpha"].Fields["PACKAGE_VERSION"] = "9" }, PhaseVerify, false, `PACKAGE_VERSION="2" but the release's .manifest says "9"`},
		{"activate: refresh fails", func(b *bench) { b.mg.fail["refresh#2"] = errors.New("exit 1: No medium found") }, PhaseActivate, true, "No medium found"},
		{"activate: systemd skips the image", func(b *bench) { b.mg.skipAt = map[int]string{2: "sysext-alpha"} }, PhaseActivate, true,
			"systemd-sysext did not merge sysext-alpha: Extension 'sysext-alpha' is for OS '11', but deployed on top of '13'."},
		{"units: a new unit fails to start", func(b *bench) { b.un.fail["start alpha-new.service"] = errors.New("job failed") }, PhaseUnits, true, "job failed"},
		{"action: the service restart fails", func(b *bench) { b.un.fail["restart alpha.service"] = errors.New("restart: job failed") }, PhaseAction, true, "restart: job failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBench(t)
			b.publish("alpha", "1", "alpha.service")
			if r := b.apply(VerbInstall, "alpha"); !r.OK {
				t.Fatalf("install: %s", r.Error)
			}
			b.publish("alpha", "2", "alpha.service", "alpha-new.service")
			c.setup(b)
			mark := len(b.rec.calls)
			r := b.apply(VerbUpdate, "alpha")
			if r.OK {
				t.Fatal("update succeeded, want a failure")
			}
			if !strings.Contains(r.Error, c.wantInErr) {
				t.Errorf("error %q does not contain %q", r.Error, c.wantInErr)
			}
			if strings.Contains(c.name, "release.json") && len(b.calls(mark, "^download ")) != 0 {
				t.Errorf("the image was downloaded before the cross-check refused the release: %v", b.rec.calls[mark:])
			}
			if r.RolledBack != c.rolled || (c.rolled && r.Phase != string(c.phase)) {
				t.Errorf("rolled back %v in phase %q, want %v in %q", r.RolledBack, r.Phase, c.rolled, c.phase)
			}
			if c.rolled && !strings.Contains(r.Error, "rolled back to 1") {
				t.Errorf("error %q does not say it rolled back to 1", r.Error)
			}
			if got := b.installed(); got["alpha"] != "1" {
				t.Fatalf("installed %v, want alpha 1", got)
			}
			if !c.rolled {
				if got := b.calls(mark, "refresh|start|stop|restart"); len(got) != 0 {
					t.Errorf("the host was touched before the failure: %v", got)
				}
				return
			}
			// New units stopped and disabled; the old one restarted on 1.
			if c.phase == PhaseUnits || c.phase == PhaseAction {
				if got := b.calls(mark, "^(stop|disable) alpha-new"); len(got) != 2 {
					t.Errorf("new unit not stopped and disabled: %v", b.rec.calls[mark:])
				}
			}
			if got := b.calls(mark, "^restart alpha.service$"); len(got) == 0 {
				t.Errorf("alpha.service not restarted on the previous version: %v", b.rec.calls[mark:])
			}
			// The last refresh came after the store was restored.
			if got := b.calls(mark, "^refresh$"); len(got) != 2 {
				t.Errorf("refreshes %d, want 2 (activate, rollback): %v", len(got), b.rec.calls[mark:])
			}
		})
	}
}

// TestUndoErrorsReachTheResult: when the rollback's own refresh fails, the
// result says both what failed and that the rollback met an error.
func TestUndoErrorsReachTheResult(t *testing.T) {
	b := newBench(t)
	b.publish("alpha", "1")
	b.apply(VerbInstall, "alpha")
	b.publish("alpha", "2")
	b.mg.fail["refresh#2"] = errors.New("first refresh failed")
	b.mg.fail["refresh#3"] = errors.New("rollback refresh failed")
	r := b.apply(VerbUpdate, "alpha")
	if r.OK || !strings.Contains(r.Error, "first refresh failed") || !strings.Contains(r.Error, "rollback refresh failed") ||
		!strings.Contains(r.Error, "the rollback met errors") {
		t.Fatalf("result error %q, want both failures named", r.Error)
	}
	var rb *RollbackError
	if !errors.As(r.Err(), &rb) || rb.Clean {
		t.Errorf("Err() = %#v, want an unclean *RollbackError", r.Err())
	}
	// The store is back on 1 all the same.
	st, _ := store.Store{Root: b.e.Root}.LoadState()
	if st.Extensions["alpha"].Version != "1" || st.Pending != nil {
		t.Errorf("state after a failed rollback refresh: %+v pending %+v", st.Extensions["alpha"], st.Pending)
	}
}

// TestConflictInstallRollsBackBoth: a failed install that removed a
// conflicting extension brings that one back, with its units.
func TestConflictInstallRollsBackBoth(t *testing.T) {
	b := newBench(t)
	b.publish("beta", "1", "beta.service")
	b.apply(VerbInstall, "beta")
	b.publish("alpha", "1")
	b.mg.skip["sysext-alpha"] = true
	mark := len(b.rec.calls)
	r := b.apply(VerbInstall, "alpha")
	if r.OK || !r.RolledBack {
		t.Fatalf("install alpha = %+v, want a rollback", r)
	}
	if got := b.installed(); got["beta"] != "1" || got["alpha"] != "" {
		t.Fatalf("installed %v, want beta 1 only", got)
	}
	if got := b.calls(mark, "beta.service"); !slices.Equal(got, []string{"stop beta.service", "disable beta.service", "restart beta.service"}) {
		t.Errorf("beta's unit calls = %v", got)
	}
	// Success removes beta for good.
	delete(b.mg.skip, "sysext-alpha")
	if r := b.apply(VerbInstall, "alpha"); !r.OK || !slices.Equal(r.Removed, []string{"beta"}) {
		t.Fatalf("second install = %+v", r)
	}
	if got := b.installed(); got["beta"] != "" || got["alpha"] != "1" {
		t.Fatalf("installed %v, want alpha only", got)
	}
}

// TestRemoveRollsBack: a removal whose refresh fails keeps the extension.
func TestRemoveRollsBack(t *testing.T) {
	b := newBench(t)
	b.publish("beta", "1", "beta.service")
	b.apply(VerbInstall, "beta")
	b.mg.fail["refresh#2"] = errors.New("busy")
	r := b.apply(VerbRemove, "beta")
	if r.OK || !r.RolledBack || !strings.Contains(r.Error, "kept it") {
		t.Fatalf("remove = %+v", r)
	}
	if got := b.installed(); got["beta"] != "1" {
		t.Fatalf("installed %v", got)
	}
	if r := b.apply(VerbRemove, "beta"); !r.OK {
		t.Fatalf("second remove: %s", r.Error)
	}
	if got := b.installed(); len(got) != 0 {
		t.Fatalf("installed %v after remove", got)
	}
}

// TestPlanCarriesResolvedAction: the update action is parsed while
// planning, and applying uses the plan's, not the configuration's.
func TestPlanCarriesResolvedAction(t *testing.T) {
	b := newBench(t)
	b.publish("alpha", "1")
	b.apply(VerbInstall, "alpha")
	b.publish("alpha", "2")
	p, err := b.e.MakePlan(context.Background(), VerbUpdate, []string{"alpha"})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Steps[0]; s.Act.Kind != manifest.ActionService || !slices.Equal(s.Act.Units, []string{"alpha.service"}) || s.Action != "service: alpha.service" {
		t.Fatalf("step action = %+v / %q", s.Act, s.Action)
	}
	b.e.Manifests.Entries["alpha"].Update = "reboot" // changed after planning
	mark := len(b.rec.calls)
	if rs := b.e.Apply(context.Background(), p); !rs[0].OK {
		t.Fatal(rs[0].Error)
	}
	if got := b.calls(mark, "^restart alpha.service$"); len(got) != 1 {
		t.Errorf("restart calls %v: the plan's action was not the one applied", got)
	}
}

// TestProtectedBoundFitsTheUnit: systemd must not SIGKILL sysextd in the
// middle of a protected step at shutdown.
func TestProtectedBoundFitsTheUnit(t *testing.T) {
	b, err := os.ReadFile("../../packaging/sysextd.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)min$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("sysextd.service has no TimeoutStopSec=Nmin")
	}
	var mins int
	fmt.Sscan(string(m[1]), &mins)
	if time.Duration(mins)*time.Minute <= protectedTimeout {
		t.Errorf("TimeoutStopSec=%dmin does not exceed the protected step bound %v", mins, protectedTimeout)
	}
}

// TestOverriddenImageRefused: an image of the same name in /etc/extensions
// or /run/extensions is what systemd-sysext would merge; a step that could
// never activate ours is refused before anything is downloaded or changed,
// and list names the culprit.
func TestOverriddenImageRefused(t *testing.T) {
	for _, p := range []string{"/etc/extensions/sysext-alpha.raw", "/run/extensions/sysext-alpha", "/etc/extensions/sysext-alpha.raw.v"} {
		t.Run(p, func(t *testing.T) {
			b := newBench(t)
			b.publish("alpha", "1", "alpha.service")
			if r := b.apply(VerbInstall, "alpha"); !r.OK {
				t.Fatalf("install: %s", r.Error)
			}
			if err := os.MkdirAll(filepath.Dir(b.e.Root.Path(p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(b.e.Root.Path(p), []byte("someone else's"), 0o644); err != nil {
				t.Fatal(err)
			}
			b.publish("alpha", "2", "alpha.service")
			mark := len(b.rec.calls)
			r := b.apply(VerbUpdate, "alpha")
			if r.OK || !strings.Contains(r.Error, p+" takes precedence over /var/lib/extensions/sysext-alpha.raw") {
				t.Fatalf("update with %s present: ok=%v error %q, want a refusal naming it", p, r.OK, r.Error)
			}
			if got := b.calls(mark, "^(download|refresh|start|stop|restart)"); len(got) != 0 {
				t.Errorf("the host was touched or the image downloaded: %v", got)
			}
			if got := b.installed(); got["alpha"] != "1" {
				t.Errorf("installed %v, want alpha 1", got)
			}
			items, err := b.e.List(t.Context(), true)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if it.Name == "alpha" && !strings.Contains(it.Problem, p+" takes precedence") {
					t.Errorf("list problem %q, want it to name %s", it.Problem, p)
				}
			}
		})
	}
}
