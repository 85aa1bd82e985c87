package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/match"
	"github.com/spamtagger/sysextd/internal/payload"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/trust"
)

// Explanation is `sysextctl explain --json` and the Explain method's
// object: every rule of an extension and what is installed of it. The CLI
// and the API build it here, so that they cannot drift apart.
type Explanation struct {
	Name        string        `json:"name"`
	Source      string        `json:"source"`
	Image       string        `json:"image"`
	Enabled     bool          `json:"enabled"`
	Recommended bool          `json:"recommended"`
	Reasons     []string      `json:"reasons"`
	Checks      []match.Check `json:"checks"`
	Conflicts   []string      `json:"conflicts"`
	Update      string        `json:"update"`
	// Signature is the policy in force and why; the rest describe what is
	// installed: its version, who signed it, hold and pin, and the etc/
	// and var/ files it put on the host.
	Signature        string         `json:"signature"`
	InstalledVersion string         `json:"installed_version,omitempty"`
	SignedBy         string         `json:"signed_by,omitempty"`
	Held             bool           `json:"held,omitempty"`
	HoldReason       string         `json:"hold_reason,omitempty"`
	Pin              string         `json:"pin,omitempty"`
	Payload          []payload.File `json:"payload,omitempty"`
	// AllowEtc and AllowShadow are the entry's payload and shadowing allowances.
	AllowEtc    []string `json:"allow_etc,omitempty"`
	AllowShadow *bool    `json:"allow_shadow,omitempty"`
	// ProbationUntil is when the installed version's probation ends
	// (engine/probation.go).
	ProbationUntil time.Time `json:"probation_until,omitzero"`
	// AvailableVersion is the release the last check found, and Rollout
	// what its release.json says for this appliance ("withdrawn", "phased
	// (N %), not yet for this appliance"; docs/fleet.md). Both come from
	// cached data: explain makes no request.
	AvailableVersion string `json:"available_version,omitempty"`
	Rollout          string `json:"rollout,omitempty"`
}

// Explain explains the extension name of e's manifests. An unknown name
// is *engine.UnknownError; a name whose manifest table is broken is an
// error listing its problems.
func Explain(ctx context.Context, e *engine.Engine, name string) (*Explanation, error) {
	en := e.Manifests.Get(name)
	if ps := e.Manifests.Invalid[name]; en == nil && len(ps) > 0 {
		msg := fmt.Sprintf("%s is left out: its manifest table has %d problem(s):", name, len(ps))
		for _, p := range ps {
			msg += "\n  " + p.String()
		}
		return nil, errors.New(msg)
	}
	if en == nil {
		return nil, &engine.UnknownError{Names: []string{name}}
	}
	res := match.Evaluate(en, e.Facts)
	ex := &Explanation{Name: en.Name, Source: fmt.Sprintf("%s:%d", en.Source, en.Line), Image: en.Image(), Enabled: en.AutoEnabled(),
		Recommended: res.Recommended, Reasons: res.Reasons, Checks: res.Checks, Conflicts: e.Manifests.Conflicting(en.Name), Update: en.Update}
	if ex.Checks == nil {
		ex.Checks = []match.Check{}
	}
	if ex.Conflicts == nil {
		ex.Conflicts = []string{}
	}
	kr, _ := trust.LoadKeyring(e.Root)
	pol := trust.PolicyFor(kr, en.Signature, en.Keys, en.Source == rootfs.VendorManifest, e.SignatureDefault, en.Name)
	ex.Signature = pol.Mode + " (" + pol.Reason + ")"
	if pol.Broken != "" {
		ex.Signature += "; REFUSING every release: " + pol.Broken
	}
	ex.AllowEtc, ex.AllowShadow = en.AllowEtc, en.AllowShadow
	if st, err := (store.Store{Root: e.Root}).LoadState(); err == nil {
		if r := st.Extensions[en.Name]; r != nil {
			ex.InstalledVersion, ex.SignedBy, ex.Held, ex.HoldReason, ex.Pin, ex.Payload = r.Version, r.SignedBy, r.Hold, r.HoldReason, r.Pin, r.Payload
			if p := engine.OnProbation(st, en.Name); p != nil && p.To == r.Version {
				ex.ProbationUntil = p.Until // rollout
			}
		} else if w := st.Withheld[en.Name]; w != nil {
			ex.Held, ex.HoldReason = true, w.Reason // undone while not installed
		}
	}
	if v, ro, ok := e.AvailableRollout(ctx, en.Name); ok {
		ex.AvailableVersion, ex.Rollout = v, ro.Describe()
	}
	return ex, nil
}
