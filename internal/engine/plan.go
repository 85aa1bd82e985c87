package engine

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/match"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/trust"
	"github.com/spamtagger/sysextd/internal/version"
)

// Op is what a step does.
type Op string

const (
	OpInstall Op = "install"
	OpUpdate  Op = "update"
	OpRemove  Op = "remove"
	// OpNone is a decision to do nothing, kept in the plan with its reason.
	OpNone Op = "none"
)

// Step is one extension's part of a plan.
type Step struct {
	Op     Op     `json:"op"`
	Name   string `json:"name"`
	Image  string `json:"image"`
	From   string `json:"from,omitempty"` // installed version
	To     string `json:"to,omitempty"`   // version to install
	Reason string `json:"reason"`
	By     string `json:"by,omitempty"` // manual or auto, for installs
	// Removes lists installed extensions that conflict with this one and
	// are removed in the same transaction.
	Removes []string `json:"removes,omitempty"`
	Action  string   `json:"action,omitempty"` // update action applied after an update
	// ActionFrom says where the action comes from: "manifest" (the local
	// manifests' update =, any .service) or "image" (the verified
	// image's UPDATE=, only units the image ships; resolved at verify,
	// never from an unverified asset).
	ActionFrom string `json:"action_from,omitempty"`
	// Policy is what the local configuration allows the step.
	Policy StepPolicy `json:"policy"`

	// Resolved when the plan is made, so that applying never re-reads
	// configuration: the release, the parsed update action, the keyring,
	// the units the installed image ships, and what the step takes out of
	// the store.
	Release  *source.Release `json:"-"`
	Act      manifest.Action `json:"-"`
	Keyring  *trust.Keyring  `json:"-"`
	OldUnits []string        `json:"-"`
	Removing []Removal       `json:"-"`
	// SignedAt is the installed release's signed time (zero: unknown).
	SignedAt time.Time `json:"-"`
	// Local is an image file on this host the step installs: the kept
	// previous image or a staged build (Verified), or one named on
	// install's command line (LocalImage). A verified one is copied in
	// as it is: sysextd verified it when it first fetched it. One from
	// the command line is checked like any release: fetched through the
	// source (its digest taken at planning must hold), its signature
	// under the step's policy.
	Local    string `json:"-"`
	Verified bool   `json:"-"`
	// HoldAfter, when set, holds the extension with this reason once the
	// step commits (a rollback holds until the operator unholds).
	HoldAfter string `json:"-"`
	// leaving is the withdrawn release an update goes back from to an
	// older one it downloads (rolloutplan.go): the installed release's
	// signed time does not bar it, since the withdrawal is verified.
	leaving string
	// goBack marks an update that leaves a withdrawn release for the kept
	// previous image (MakePlan turns it into that rollback).
	goBack bool
	// PinAfter, when set, pins the extension to this version once the
	// step commits (sysextctl pin of one not installed; pin.go).
	PinAfter string `json:"-"`
}

// Where a step's update action comes from.
const (
	ActionFromManifest = "manifest"
	ActionFromImage    = "image"
)

// StepPolicy is what the local configuration allows one step, resolved
// when the plan is made (docs/trust.md).
type StepPolicy struct {
	// Signature is the signature policy, with the setting it came from.
	Signature trust.Policy `json:"signature"`
	// AllowEtc are the payload paths the entry lets through the payload
	// policy (allow_etc).
	AllowEtc []string `json:"allow_etc,omitempty"`
	// AllowShadow is the entry's allow_shadow: nil warns about shadowed
	// files but never enables or starts an image unit that hides a base
	// unit; true allows both; false refuses an image that hides anything.
	AllowShadow *bool `json:"allow_shadow,omitempty"`
}

// Removal is an installed extension a step takes out.
type Removal struct {
	Name  string
	Image string
	Units []string
}

// Failure is an extension the plan could not be made for.
type Failure struct {
	Name  string `json:"name"`
	Error string `json:"error"`
	err   error
}

// Err is the underlying error.
func (f Failure) Err() error { return f.err }

// Plan is what a verb will do, as plain data.
type Plan struct {
	Verb     string    `json:"verb"`
	Steps    []Step    `json:"steps"`
	Failures []Failure `json:"failures"`
	Warnings []string  `json:"warnings"`
}

// Changes counts the steps that change something.
func (p *Plan) Changes() int {
	n := 0
	for _, s := range p.Steps {
		if s.Op != OpNone {
			n++
		}
	}
	return n
}

// planInput is everything a plan is computed from.
type planInput struct {
	set      *manifest.Set
	inv      *inventory
	releases map[string]source.Result
	match    map[string]match.Result
	// rollout is each release's phase and withdrawal; ignorePhasing takes
	// phased releases anyway (update --ignore-phasing).
	rollout       map[string]Rollout
	ignorePhasing bool
	// refused are the releases the lookup stepped over, newest first
	// (rolloutplan.go): withdrawn, or phased away from this appliance.
	refused map[string][]refusedRelease
	// local are the image names of the local images (install FILE) by
	// extension name.
	local map[string]string
}

func newPlan(verb string) *Plan {
	return &Plan{Verb: verb, Steps: []Step{}, Failures: []Failure{}, Warnings: []string{}}
}

func (p *Plan) fail(name string, err error) {
	p.Failures = append(p.Failures, Failure{Name: name, Error: err.Error(), err: err})
}

// UnknownError names extensions no manifest knows.
type UnknownError struct{ Names []string }

func (e *UnknownError) Error() string {
	return "unknown extension(s): " + strings.Join(e.Names, ", ")
}

// planInstall installs or updates the named extensions and removes what
// conflicts with them.
func planInstall(in planInput, names []string, by string) *Plan {
	p := newPlan("install")
	wanted := map[string]bool{}
	for _, n := range names {
		wanted[n] = true
	}
	for _, n := range uniqueSorted(names) {
		for _, c := range in.set.Conflicting(n) {
			if wanted[c] && n < c {
				p.fail(n, fmt.Errorf("%s and %s conflict: install only one", n, c))
				p.fail(c, fmt.Errorf("%s and %s conflict: install only one", n, c))
				delete(wanted, n)
				delete(wanted, c)
			}
		}
	}
	for _, n := range uniqueSorted(names) {
		if !wanted[n] {
			continue
		}
		step, ok := in.upgradeStep(p, n, by, true)
		if !ok {
			continue
		}
		if step.Op != OpNone {
			for _, c := range in.set.Conflicting(n) {
				if in.inv.get(c) != nil {
					step.Removes = append(step.Removes, c)
				}
			}
		}
		p.Steps = append(p.Steps, step)
	}
	return p
}

// upgradeStep decides install, update or nothing for one manifest entry.
// explicit is true when the operator named it (an install turns an auto
// entry into a manual one). ok is false when a failure was recorded.
func (in planInput) upgradeStep(p *Plan, name, by string, explicit bool) (Step, bool) {
	if cur := in.inv.get(name); cur != nil && cur.Present && cur.Broken == "" && cur.Record != nil && cur.Record.Hold {
		return Step{Op: OpNone, Name: name, Image: cur.Image, From: cur.Version,
			Reason: fmt.Sprintf("held (%s): sysextctl unhold %s to let it change", cur.Record.HoldReason, name)}, true
	}
	if step, held := in.withheld(name, explicit); held { // rollout: probation.go
		return step, true
	}
	r := in.releases[name]
	if r.Err != nil {
		p.fail(name, fmt.Errorf("looking up %s: %w", name, r.Err))
		return Step{}, false
	}
	if r.Release == nil {
		p.fail(name, fmt.Errorf("looking up %s: no release found", name))
		return Step{}, false
	}
	rel := r.Release
	step := Step{Name: name, Image: imageOf(in, name), To: rel.Version, Release: rel, By: by}
	cur := in.inv.get(name)
	if s, ok, decided := in.rolloutStep(p, step, cur); decided {
		return s, ok
	}
	if s, ok, decided := in.pastRefused(p, step, cur); decided {
		return s, ok
	}
	if cur == nil || !cur.Present || cur.Broken != "" {
		step.Op, step.Reason = OpInstall, "requested"
		if by == store.ByAuto {
			step.Reason = "recommended: " + strings.Join(in.match[name].Reasons, ", ")
		}
		if cur != nil && cur.Broken != "" {
			step.Op, step.Reason, step.From = OpUpdate, "installed image is broken: "+cur.Broken, cur.Version
		}
		return step, true
	}
	step.From = cur.Version
	if pin := pinOf(cur); pin != "" {
		switch {
		case cur.Version == pin:
			step.Op, step.Reason = OpNone, "pinned to "+pin
		case rel.Version == pin:
			step.Op, step.Reason = OpUpdate, "pinned to "+pin
		default:
			p.fail(name, fmt.Errorf("%s is pinned to %s, but the release found is %s (tag %s)", name, pin, rel.Version, rel.Tag))
			return Step{}, false
		}
		step.By = cur.By
		return step, true
	}
	if !explicit || cur.By != "" {
		step.By = cur.By
	}
	if explicit && by == store.ByManual {
		step.By = store.ByManual
	}
	cmp, err := version.Stamp{Version: rel.Version, BuildTime: rel.BuildTime}.Compare(version.Stamp{Version: cur.Version, BuildTime: cur.BuildTime})
	switch {
	case err != nil:
		p.fail(name, fmt.Errorf("comparing versions of %s: %w", name, err))
		return Step{}, false
	case cmp > 0:
		step.Op, step.Reason = OpUpdate, fmt.Sprintf("newer release %s", rel.Tag)
	case cmp == 0:
		step.Op, step.Reason = OpNone, "up to date"
	default:
		step.Op, step.Reason = OpNone, fmt.Sprintf("installed %s is newer than the latest release %s: not downgrading", cur.Version, rel.Version)
		p.Warnings = append(p.Warnings, name+": "+step.Reason)
	}
	return step, true
}

func pinOf(cur *installed) string {
	if cur.Record == nil {
		return ""
	}
	return cur.Record.Pin
}

// planRemove removes the named installed extensions.
func planRemove(in planInput, names []string) *Plan {
	p := newPlan("remove")
	for _, n := range uniqueSorted(names) {
		cur := in.inv.get(n)
		if cur == nil {
			p.Steps = append(p.Steps, Step{Op: OpNone, Name: n, Image: imageOf(in, n), Reason: "not installed"})
			continue
		}
		p.Steps = append(p.Steps, Step{Op: OpRemove, Name: n, Image: cur.Image, From: cur.Version, Reason: "requested"})
	}
	return p
}

// planUpdate updates the named (default: all) installed extensions.
func planUpdate(in planInput, names []string) *Plan {
	p := newPlan("update")
	if len(names) == 0 {
		names = in.inv.names()
	}
	for _, n := range uniqueSorted(names) {
		if in.inv.get(n) == nil {
			p.Steps = append(p.Steps, Step{Op: OpNone, Name: n, Image: imageOf(in, n), Reason: "not installed"})
			continue
		}
		if in.set.Get(n) == nil {
			p.Steps = append(p.Steps, Step{Op: OpNone, Name: n, Image: in.inv.get(n).Image, Reason: "no manifest entry: cannot look for updates"})
			continue
		}
		if step, ok := in.upgradeStep(p, n, "", false); ok {
			p.Steps = append(p.Steps, step)
		}
	}
	return p
}

// planAuto installs what is recommended and enabled, and updates what is
// installed. Recommended extensions that conflict are resolved: the one
// installed stays, else the one from a local manifest, else neither.
func planAuto(in planInput) *Plan {
	p := newPlan("auto")
	want := map[string]bool{}
	for _, n := range in.set.Names() {
		if in.match[n].Recommended && in.set.Get(n).AutoEnabled() && in.inv.get(n) == nil {
			want[n] = true
		}
	}
	// A recommended extension never displaces an installed one.
	for n := range want {
		for _, c := range in.set.Conflicting(n) {
			if in.inv.get(c) != nil {
				delete(want, n)
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s is recommended but conflicts with installed %s: keeping %s", n, c, c))
				break
			}
		}
	}
	for _, n := range sortedKeys(want) {
		for _, c := range in.set.Conflicting(n) {
			if !want[c] || !want[n] || c < n {
				continue
			}
			a, b := in.set.Get(n), in.set.Get(c)
			switch {
			case a.Local && !b.Local:
				delete(want, c)
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s and %s are both recommended and conflict: choosing %s from the local manifest", n, c, n))
			case b.Local && !a.Local:
				delete(want, n)
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s and %s are both recommended and conflict: choosing %s from the local manifest", n, c, c))
			default:
				delete(want, n)
				delete(want, c)
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s and %s are both recommended and conflict: installing neither (pick one with sysextctl install, or set enabled = false on the other)", n, c))
			}
		}
	}
	for _, n := range sortedKeys(want) {
		if step, ok := in.upgradeStep(p, n, store.ByAuto, false); ok {
			p.Steps = append(p.Steps, step)
		}
	}
	for _, n := range in.inv.names() {
		if in.set.Get(n) == nil {
			continue
		}
		if step, ok := in.upgradeStep(p, n, "", false); ok {
			p.Steps = append(p.Steps, step)
		}
	}
	sort.SliceStable(p.Steps, func(i, j int) bool { return p.Steps[i].Name < p.Steps[j].Name })
	return p
}

func imageOf(in planInput, name string) string {
	if img, ok := in.local[name]; ok {
		return img
	}
	if en := in.set.Get(name); en != nil {
		return en.Image()
	}
	return name
}

func uniqueSorted(names []string) []string {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return sortedKeys(m)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
