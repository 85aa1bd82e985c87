package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/failpoint"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/store"
)

// Probation defaults (sysextd.toml `probation`, `probation_restarts`; a
// manifest entry's `probation`).
const (
	DefaultProbation         = 60 * time.Second
	DefaultProbationRestarts = 2
	DefaultBootTries         = 3
)

// ProbationConfig is how long the units of a change are watched and how
// many automatic restarts they may take. The zero value is the default;
// Off disables probation.
type ProbationConfig struct {
	Window      time.Duration
	MaxRestarts int // 0: DefaultProbationRestarts; negative: none allowed
	Off         bool
	// BootTries is how many sysextd starts may find a change unconfirmed
	// before it is undone (boot.go); 0: DefaultBootTries.
	BootTries int
	// BootID returns the current boot's ID; nil reads
	// /proc/sys/kernel/random/boot_id.
	BootID func() (string, error)
}

func (c ProbationConfig) window(en *manifest.Entry) time.Duration {
	if en != nil && en.Probation != nil {
		return en.Probation.Duration
	}
	if c.Window > 0 {
		return c.Window
	}
	return DefaultProbation
}

// BootTriesOrDefault is BootTries with its default applied.
func (c ProbationConfig) BootTriesOrDefault() int { return c.bootTries() }

func (c ProbationConfig) bootTries() int {
	if c.BootTries > 0 {
		return c.BootTries
	}
	return DefaultBootTries
}

func (c ProbationConfig) maxRestarts() int {
	switch {
	case c.MaxRestarts < 0:
		return 0
	case c.MaxRestarts == 0:
		return DefaultProbationRestarts
	}
	return c.MaxRestarts
}

func (e *Engine) bootID() string {
	read := e.Probation.BootID
	if read == nil {
		read = func() (string, error) {
			b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
			return strings.TrimSpace(string(b)), err
		}
	}
	id, err := read()
	if err != nil {
		e.log().Warn("reading the boot ID: " + err.Error())
	}
	return id
}

// --- The start: written by the change's own commit. ---

// probationUnits are the units a committed step started or restarted: the
// [Install] units of the new image and the units of a service action. A
// rollback (HoldAfter set) is not watched: it goes back to what ran before.
func (t *txn) probationUnits() []string {
	s := t.s
	if t.e.Units == nil || t.e.Probation.Off || s.Op == OpRemove || s.HoldAfter != "" || t.info == nil {
		return nil
	}
	us := slices.Clone(t.info.Units)
	if s.Op == OpUpdate && s.Act.Kind == manifest.ActionService {
		us = append(us, s.Act.Units...)
	}
	return uniq(sortedList(us))
}

// awaitsBoot: a change whose effect waits for a reboot (the reboot update
// action) is confirmed by a later boot (boot.go).
func (t *txn) awaitsBoot() bool {
	return t.e.Units != nil && !t.e.Probation.Off && t.s.Op == OpUpdate && t.s.HoldAfter == "" && t.info != nil &&
		t.s.Act.Kind == manifest.ActionReboot
}

// newProbation is the record a step's commit writes, or nil. It reads each
// unit's NRestarts now, so that restarts before the probation (systemd
// keeps counting across a manual restart of some units) are not held
// against the new version.
func (t *txn) newProbation(ctx context.Context) *store.Probation {
	us := t.probationUnits()
	awaitBoot := t.awaitsBoot()
	if len(us) == 0 && !awaitBoot {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	now := t.e.now().UTC()
	p := &store.Probation{Name: t.s.Name, Image: t.s.Image, To: t.info.Fields["PACKAGE_VERSION"], Units: us,
		Since: now, Until: now.Add(t.e.Probation.window(t.e.Manifests.Get(t.s.Name))),
		MaxRestarts: t.e.Probation.maxRestarts(), Restarts: map[string]uint32{}, BootID: t.e.bootID(), AwaitBoot: awaitBoot}
	if awaitBoot {
		p.Units = uniq(sortedList(slices.Clone(t.info.Units)))
	}
	if t.s.Op == OpUpdate {
		p.From = t.s.From
	}
	for _, u := range us {
		if h, err := t.e.Units.Health(ctx, u); err == nil {
			p.Restarts[u] = h.NRestarts
		}
	}
	return p
}

// setProbation is called inside a step's commit (the same atomic write):
// whatever was on probation for the names the step touched is settled by
// it, and the step's own probation, if any, begins.
func setProbation(state *store.State, s Step, p *store.Probation) {
	switch {
	case s.Op == OpRemove && s.HoldAfter != "":
		// A fresh install removed after its probation stays held.
		if state.Withheld == nil {
			state.Withheld = map[string]*store.Withheld{}
		}
		state.Withheld[s.Name] = &store.Withheld{Reason: s.HoldAfter, Since: time.Now().UTC()}
	case s.Op != OpRemove:
		delete(state.Withheld, s.Name) // installed again by the operator
		if len(state.Withheld) == 0 {
			state.Withheld = nil
		}
	}
	delete(state.Probation, s.Name)
	for _, r := range s.Removing {
		delete(state.Probation, r.Name)
	}
	if p == nil {
		if len(state.Probation) == 0 {
			state.Probation = nil
		}
		return
	}
	if state.Probation == nil {
		state.Probation = map[string]*store.Probation{}
	}
	state.Probation[s.Name] = p
}

// --- The watch: whoever holds the lock next. ---

// ProbationReport is what CheckProbation did.
type ProbationReport struct {
	// Results are the rollbacks and removals of failed probations.
	Results []Result
	// Passed lists the extensions whose probation ended well.
	Passed []string
	// Next is the earliest end of a probation still running; zero when
	// none is.
	Next time.Time
}

// ProbationFailure says which unit failed a probation, and how.
type ProbationFailure struct {
	Unit   string
	Health string // "failed (exit-code)", "restarted 3 times"
}

func (f ProbationFailure) String() string { return f.Unit + " " + f.Health }

// CheckProbation looks at every change on probation: a unit that failed or
// restarted too often rolls the change back (a fresh install is removed)
// and holds the extension; a probation whose window ended with healthy
// units is over. Each outcome is in the history (verb "probation") and the
// journal. The caller holds the lock and has run Recover; by is
// store.HistoryByCLI or HistoryByDaemon.
func (e *Engine) CheckProbation(ctx context.Context, by string) (ProbationReport, error) {
	var rep ProbationReport
	st := e.store()
	state, err := st.LoadState()
	if err != nil {
		return rep, err
	}
	if len(state.Probation) == 0 {
		return rep, nil
	}
	if e.Units == nil {
		return rep, errors.New("checking probation: no service manager to ask")
	}
	e.hit("probation:check:before")
	if err := e.reopenAfterReboot(ctx, state); err != nil {
		return rep, err
	}
	for _, name := range probationNames(state.Probation) {
		p := state.Probation[name]
		rec := state.Extensions[name]
		if rec == nil || rec.Image != p.Image || rec.Version != p.To {
			// Changed since by other means (an operator's rollback that
			// was interrupted and undone...): nothing left to watch.
			if err := e.endProbation(name, p, ""); err != nil {
				return rep, err
			}
			continue
		}
		if p.AwaitBoot {
			continue // its window opens in the next boot
		}
		fail, err := e.probe(ctx, p)
		if err != nil {
			e.log().Warn(name+": probation: "+err.Error(), "extension", name)
		}
		switch {
		case fail != nil:
			rep.Results = append(rep.Results, e.failProbation(ctx, by, p, *fail)...)
		case !e.now().Before(p.Until):
			e.hit("probation:pass:before")
			if err := e.endProbation(name, p, by); err != nil {
				return rep, err
			}
			rep.Passed = append(rep.Passed, name)
		default:
			if rep.Next.IsZero() || p.Until.Before(rep.Next) {
				rep.Next = p.Until
			}
		}
	}
	return rep, nil
}

// reopenAfterReboot gives a probation opened in another boot a new window
// in this one: the units' failures and restart counters did not survive
// the reboot (boot assessment counts the boots themselves).
func (e *Engine) reopenAfterReboot(ctx context.Context, state *store.State) error {
	boot := e.bootID()
	changed := false
	for _, p := range state.Probation {
		if p.BootID == boot {
			continue
		}
		now := e.now().UTC()
		p.Until, p.Since, p.BootID, p.AwaitBoot, changed = now.Add(p.Until.Sub(p.Since)), now, boot, false, true
		p.Restarts = map[string]uint32{}
		for _, u := range p.Units {
			if h, err := e.Units.Health(ctx, u); err == nil {
				p.Restarts[u] = h.NRestarts
			}
		}
	}
	if !changed {
		return nil
	}
	return e.store().SaveState(state)
}

// probe asks systemd about each unit of p.
func (e *Engine) probe(ctx context.Context, p *store.Probation) (*ProbationFailure, error) {
	var errs []error
	for _, u := range p.Units {
		h, err := e.Units.Health(ctx, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if h.ActiveState == "failed" {
			what := "failed"
			if h.Result != "" {
				what += " (" + h.Result + ")"
			}
			return &ProbationFailure{Unit: u, Health: what}, nil
		}
		if n := h.NRestarts - min(h.NRestarts, p.Restarts[u]); int(n) > p.MaxRestarts {
			return &ProbationFailure{Unit: u, Health: fmt.Sprintf("restarted %d times (more than %d)", n, p.MaxRestarts)}, nil
		}
	}
	return nil, errors.Join(errs...)
}

// endProbation clears p after a healthy window (recorded in the history
// when by is set) or when there is nothing left to watch.
func (e *Engine) endProbation(name string, p *store.Probation, by string) error {
	st := e.store()
	state, err := st.LoadState()
	if err != nil {
		return err
	}
	delete(state.Probation, name)
	if len(state.Probation) == 0 {
		state.Probation = nil
	}
	if err := st.SaveState(state); err != nil {
		return err
	}
	if by != "" {
		msg := fmt.Sprintf("%s %s passed its probation: %s healthy for %s", name, p.To, strings.Join(p.Units, ", "), p.Until.Sub(p.Since).Round(time.Second))
		e.log().Info(msg, "extension", name, "version", p.To)
		e.history(store.HistoryEntry{Verb: "probation", By: by, Name: name, Op: "probation", From: p.From, To: p.To, Result: store.HistoryOK, Reason: msg})
	}
	return nil
}

// failProbation puts the previous image back (a fresh install is removed)
// through the normal transaction, whose commit clears the probation in
// the same write, and holds the extension. The failure is written to the
// history before the rollback begins, so a crash in between loses
// nothing (a second attempt writes it again).
func (e *Engine) failProbation(ctx context.Context, by string, p *store.Probation, f ProbationFailure) []Result {
	why := fmt.Sprintf("probation of %s failed: %s", p.To, f)
	e.log().Error(p.Name+": "+why, "extension", p.Name, "version", p.To, "unit", f.Unit)
	return e.undoChange(ctx, by, p, why)
}

// undoChange puts the image p replaced back (a fresh install is removed)
// and holds the extension with why; see failProbation.
func (e *Engine) undoChange(ctx context.Context, by string, p *store.Probation, why string) []Result {
	name := p.Name
	e.history(store.HistoryEntry{Verb: "probation", By: by, Name: name, Op: "probation", From: p.From, To: p.To, Result: store.HistoryFailed, Error: why})
	e.hit("probation:rollback:before")
	var plan *Plan
	var err error
	if p.From == "" {
		plan, err = e.MakePlan(ctx, VerbRemove, []string{name})
		if err == nil {
			for i := range plan.Steps {
				plan.Steps[i].HoldAfter = why
			}
		}
	} else {
		plan, err = e.RollbackPlan(ctx, name)
		if err == nil {
			plan.Steps[0].HoldAfter = why
		}
	}
	var results []Result
	if err == nil {
		plan.Verb = "probation"
		results = e.Apply(ctx, plan)
		e.RecordHistory(plan.Verb, by, results)
	}
	e.hit("probation:rollback:after")
	ok := err == nil && len(results) > 0
	for _, r := range results {
		ok = ok && r.OK
		if r.err != nil && err == nil {
			err = r.err
		}
	}
	if ok {
		if p.From == "" {
			e.log().Warn(fmt.Sprintf("%s: removed %s: %s", name, p.To, why), "extension", name)
		} else {
			e.log().Warn(fmt.Sprintf("%s: rolled back from %s to %s, and held: %s", name, p.To, p.From, why), "extension", name)
		}
		return results
	}
	// The change could not be undone: stop watching, hold it and say why,
	// rather than try again every few seconds.
	if err == nil {
		err = errors.New("nothing was undone")
	}
	reason := why + "; undoing it failed: " + err.Error()
	e.log().Error(name+": "+reason, "extension", name)
	if herr := e.SetHold(name, true, reason); herr != nil {
		e.log().Error(name+": holding after a failed probation: "+herr.Error(), "extension", name)
	}
	if eerr := e.endProbation(name, p, ""); eerr != nil {
		e.log().Error(name+": clearing the probation: "+eerr.Error(), "extension", name)
	}
	return append(results, failed(name, OpUpdate, fmt.Errorf("%s: %w", why, err)))
}

// crashHook lets a test crash the probation at a named step in-process;
// the reliability build kills the process there (failpoint).
var crashHook func(name string)

func (e *Engine) hit(name string) {
	failpoint.Hit(name)
	if crashHook != nil {
		crashHook(name)
	}
}

func (e *Engine) history(h store.HistoryEntry) {
	if h.Time.IsZero() {
		h.Time = e.now()
	}
	if err := e.store().AppendHistory(h); err != nil {
		e.log().Warn("recording history failed: "+err.Error(), "extension", h.Name, "err", err)
	}
}

func probationNames(m map[string]*store.Probation) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// OnProbation returns the probation of name, or nil (list, explain).
func OnProbation(state *store.State, name string) *store.Probation {
	if state == nil {
		return nil
	}
	return state.Probation[name]
}

// ProbationDue reports, without the lock and without changing anything,
// whether CheckProbation has something to do now (a unit failed or
// restarted too often, a window ended, a reboot since a window opened),
// and whether anything is on probation at all. The daemon polls it while
// a probation runs and takes the lock only when it says so.
func (e *Engine) ProbationDue(ctx context.Context) (due, any bool, err error) {
	state, err := e.store().LoadState()
	if err != nil || len(state.Probation) == 0 {
		return false, false, err
	}
	if e.Units == nil {
		return false, true, errors.New("checking probation: no service manager to ask")
	}
	boot := e.bootID()
	for _, p := range state.Probation {
		if p.BootID != boot {
			return true, true, nil
		}
		if p.AwaitBoot {
			continue
		}
		if !e.now().Before(p.Until) {
			return true, true, nil
		}
		if f, _ := e.probe(ctx, p); f != nil {
			return true, true, nil
		}
	}
	return false, true, nil
}

// withheld is the plan's answer for an extension held while not installed
// (store.Withheld): nothing, unless the operator names it.
func (in planInput) withheld(name string, explicit bool) (Step, bool) {
	if explicit || in.inv.state == nil || in.inv.get(name) != nil {
		return Step{}, false
	}
	w := in.inv.state.Withheld[name]
	if w == nil {
		return Step{}, false
	}
	return Step{Op: OpNone, Name: name, Reason: fmt.Sprintf("held (%s): sysextctl install %s or unhold %s to let it be installed", w.Reason, name, name)}, true
}

// unwithhold releases the hold of an extension that is not installed
// (sysextctl unhold); done is false when there was none.
func (e *Engine) unwithhold(name string) (done bool, err error) {
	st := e.store()
	state, err := st.LoadState()
	if err != nil || state.Withheld[name] == nil || state.Extensions[name] != nil {
		return false, err
	}
	delete(state.Withheld, name)
	if len(state.Withheld) == 0 {
		state.Withheld = nil
	}
	return true, st.SaveState(state)
}
