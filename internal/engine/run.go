package engine

import (
	"context"
	"fmt"

	"github.com/spamtagger/sysextd/internal/match"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
)

// Verbs a plan can be made for.
const (
	VerbInstall = "install"
	VerbRemove  = "remove"
	VerbUpdate  = "update"
	VerbAuto    = "auto"
)

// MakePlan computes what verb would do with names. It changes nothing, so
// it is also the --dry-run. Names no manifest knows (and, for remove and
// update, that are not installed either) are an *UnknownError. local are
// images named on install's command line (LocalImage): each is installed
// instead of its entry's release, with the same checks and resolution.
func (e *Engine) MakePlan(ctx context.Context, verb string, names []string, local ...LocalImage) (*Plan, error) {
	if len(local) > 0 && verb != VerbInstall {
		return nil, fmt.Errorf("local images are only installed, not for %s", verb)
	}
	if err := CheckLocal(local); err != nil {
		return nil, err
	}
	locals := localImages(local)
	inv, err := e.inventoryWith(ctx, local)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, n := range uniqueSorted(names) {
		if _, ok := locals[n]; !ok && e.Manifests.Get(n) == nil && (verb == VerbInstall || inv.get(n) == nil) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownError{Names: unknown}
	}
	in := planInput{set: e.Manifests, inv: inv, match: map[string]match.Result{}, local: map[string]string{}, refused: map[string][]refusedRelease{}}
	for _, n := range e.Manifests.Names() {
		in.match[n] = match.Evaluate(e.Manifests.Get(n), e.Facts)
	}
	lookup := func(ns []string) {
		var reqs []source.Request
		pins := e.pins()
		for _, n := range ns {
			en := e.Manifests.Get(n)
			if li, ok := locals[n]; ok {
				reqs = append(reqs, li.request(en, pins))
				in.local[n] = li.image(en)
			} else if en != nil {
				reqs = append(reqs, e.pinnedRequest(en, pins))
			}
		}
		in.releases = e.lookupAt(ctx, reqs, false, e.now())
		in.rollout = e.rollouts(ctx, in.releases)
		e.skipRefused(ctx, &in, reqs) // rolloutplan.go
	}
	in.ignorePhasing = e.IgnorePhasing
	var p *Plan
	switch verb {
	case VerbInstall:
		lookup(names)
		p = planInstall(in, names, store.ByManual)
	case VerbRemove:
		p = planRemove(in, names)
	case VerbUpdate:
		var ns []string
		for _, n := range names {
			if inv.get(n) != nil {
				ns = append(ns, n)
			}
		}
		if len(names) == 0 {
			ns = inv.names()
		}
		lookup(ns) // nothing to look up for what is not installed
		p = planUpdate(in, names)
	case VerbAuto:
		var ns []string
		for _, n := range e.Manifests.Names() {
			if inv.get(n) != nil || (in.match[n].Recommended && e.Manifests.Get(n).AutoEnabled()) {
				ns = append(ns, n)
			}
		}
		lookup(ns)
		p = planAuto(in)
	default:
		return nil, fmt.Errorf("unknown verb %q", verb)
	}
	e.goBack(ctx, p, inv)
	for i := range p.Steps {
		if li, ok := locals[p.Steps[i].Name]; ok && li.OCI == "" && p.Steps[i].Op != OpNone && !p.Steps[i].Verified {
			p.Steps[i].Local = li.Path
		}
	}
	e.resolve(p, inv)
	return p, nil
}

// goBack turns each step leaving a withdrawn release into the rollback to
// the kept previous image: offline, through the usual transaction.
func (e *Engine) goBack(ctx context.Context, p *Plan, inv *inventory) {
	steps := p.Steps[:0]
	for _, s := range p.Steps {
		if s.goBack {
			rb, err := e.rollbackStep(ctx, inv, s.Name)
			if err != nil {
				p.fail(s.Name, fmt.Errorf("going back from a withdrawn release: %w", err))
				continue
			}
			rb.Reason = s.Reason
			s = rb
		}
		steps = append(steps, s)
	}
	p.Steps = steps
}

// resolve fills in what applying a step needs from configuration and the
// store, so that Apply never re-reads either: the update action (or that
// it comes from the verified image), the policy and keyring, the units of
// the installed image, and what the step takes out of the store.
func (e *Engine) resolve(p *Plan, inv *inventory) {
	for i := range p.Steps {
		s := &p.Steps[i]
		cur := inv.get(s.Name)
		e.resolveStep(s, cur)
		if s.Op == OpInstall || s.Op == OpUpdate {
			for _, c := range s.Removes {
				if old := inv.get(c); old != nil {
					s.Removing = append(s.Removing, Removal{Name: c, Image: old.Image, Units: old.Units})
				}
			}
		}
	}
}

// resolveStep fills in one step from the configuration and cur, the
// installed extension (nil when none).
func (e *Engine) resolveStep(s *Step, cur *installed) {
	if cur != nil {
		s.OldUnits = cur.Units
		if cur.Record != nil && s.leaving == "" {
			s.SignedAt = cur.Record.SignedAt
		}
	}
	s.Keyring = e.keyring()
	s.Policy = e.policy(s.Name)
	switch s.Op {
	case OpRemove:
		if cur != nil {
			s.Removing = []Removal{{Name: s.Name, Image: cur.Image, Units: cur.Units}}
		}
	case OpInstall, OpUpdate:
		s.Act, s.ActionFrom = manifestAction(e.Manifests.Get(s.Name))
		if s.Op == OpUpdate {
			s.Action = s.Act.String()
			if s.ActionFrom == ActionFromImage {
				s.Action = "from the image's UPDATE= once verified"
			}
		}
	}
}

// Result is the outcome of one step.
type Result struct {
	Name    string   `json:"name"`
	Op      Op       `json:"op"`
	OK      bool     `json:"ok"`
	From    string   `json:"from,omitempty"`
	To      string   `json:"to,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Action  string   `json:"action,omitempty"`
	Message string   `json:"message"`
	Error   string   `json:"error,omitempty"`
	// RolledBack is true when a failed step was undone; Phase is the phase
	// that failed.
	RolledBack bool   `json:"rolled_back,omitempty"`
	Phase      string `json:"phase,omitempty"`

	err error
}

// Err is the failure, or nil.
func (r Result) Err() error { return r.err }

func failed(name string, op Op, err error) Result {
	return Result{Name: name, Op: op, Error: err.Error(), Message: err.Error(), err: err}
}

// Apply executes a plan step by step. One step failing does not stop the
// others. Failures recorded while planning come back as results too. The
// caller holds the lock, has run Recover, and reports the results (Apply
// does not log them).
func (e *Engine) Apply(ctx context.Context, p *Plan) []Result {
	results := p.FailureResults()
	for _, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			results = append(results, failed(s.Name, s.Op, fmt.Errorf("not started: %w", err)))
			continue
		}
		var r Result
		switch s.Op {
		case OpNone:
			r = Result{Name: s.Name, Op: OpNone, OK: true, From: s.From, Message: s.Reason}
		case OpRemove:
			r = e.remove(ctx, s)
		default:
			r = e.install(ctx, s)
		}
		results = append(results, r)
	}
	return results
}

// FailureResults turns the failures met while planning into results.
func (p *Plan) FailureResults() []Result {
	var results []Result
	for _, f := range p.Failures {
		results = append(results, Result{Name: f.Name, Op: OpNone, Error: f.Error, Message: f.Error, err: f.err})
	}
	return results
}

// Summary classifies results for the exit code: how many steps succeeded,
// failed, and whether every failure was a network or rate-limit problem.
func Summary(results []Result) (ok, bad int, networkOnly bool) {
	networkOnly = true
	for _, r := range results {
		if r.OK {
			ok++
			continue
		}
		bad++
		if _, rl := source.IsRateLimit(r.err); !rl && !source.IsNetwork(r.err) {
			networkOnly = false
		}
	}
	return ok, bad, networkOnly && bad > 0
}
