package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/spamtagger/sysextd/internal/rollout"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/trust"
)

// ReleaseJSON is the asset that carries a release's rollout fields.
const ReleaseJSON = "release.json"

// Rollout is what a release's release.json says about its rollout
// (docs/fleet.md), read only from verified data: the release.json of a
// signed release counts only when its signed SHA256SUMS lists it (and
// lookup has checked that it matches); an unsigned release, which the
// policy let through, is trusted as its source is.
type Rollout struct {
	// Phased is phased_percentage (0–100), 100 when the release is not
	// phased.
	Phased int `json:"phased_percentage"`
	// Withdrawn: the publisher took the release back; it is never
	// installed, and appliances running it go back.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Eligible: this appliance takes the release now (hash of machine-id,
	// extension and tag below Phased).
	Eligible bool `json:"eligible"`
}

// PhasedOut reports whether the release is phased and not yet for this
// appliance.
func (r Rollout) PhasedOut() bool { return r.Phased < 100 && !r.Eligible }

// Describe says it for people: "phased (N %), not yet for this appliance",
// "withdrawn", or "".
func (r Rollout) Describe() string {
	switch {
	case r.Withdrawn:
		return "withdrawn"
	case r.PhasedOut():
		return fmt.Sprintf("phased (%d %%), not yet for this appliance", r.Phased)
	case r.Phased < 100:
		return fmt.Sprintf("phased (%d %%), this appliance takes it", r.Phased)
	}
	return ""
}

var fullRollout = Rollout{Phased: 100, Eligible: true}

// rolloutOf is the rollout of name's release rel for this appliance, with
// the extension's signature policy and the machine id resolved by the
// caller: it reads nothing from the engine but its source and the lookup
// memo, so rollouts runs it in parallel. A release.json that cannot be
// read or verified says nothing (the release is then neither phased nor
// withdrawn), and the reason is logged.
func (e *Engine) rolloutOf(ctx context.Context, name string, rel *source.Release, pol trust.Policy, machineID string) Rollout {
	if rel == nil {
		return fullRollout
	}
	a, ok := rel.Assets[ReleaseJSON]
	if !ok {
		return fullRollout
	}
	if signed(rel) {
		if pol.Mode != trust.ModeNone {
			sums, err := e.lookupSums(ctx, name, pol, rel)
			if err != nil || sums.List == nil {
				return fullRollout // the install refuses it with the reason
			}
			if _, listed := sums.List[ReleaseJSON]; !listed {
				e.log().Warn(fmt.Sprintf("%s: %s of %s is not in its signed %s: ignoring its rollout fields", name, ReleaseJSON, rel.Tag, trust.SumsFile), "extension", name)
				return fullRollout
			}
		}
	}
	b, err := e.Source.Fetch(ctx, a)
	if err != nil {
		e.log().Warn(fmt.Sprintf("%s: reading %s of %s: %v", name, ReleaseJSON, rel.Tag, err), "extension", name)
		return fullRollout
	}
	ro, err := parseRollout(b)
	if err != nil {
		e.log().Warn(fmt.Sprintf("%s: %s of %s: %v", name, ReleaseJSON, rel.Tag, err), "extension", name)
		return fullRollout
	}
	ro.Eligible = ro.Phased >= 100 || rollout.Eligible(machineID, name, rel.Tag, ro.Phased)
	return ro
}

// parseRollout reads the rollout fields of a release.json.
func parseRollout(b []byte) (Rollout, error) {
	var raw struct {
		Phased    *float64 `json:"phased_percentage"`
		Withdrawn *bool    `json:"withdrawn"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fullRollout, fmt.Errorf("not valid JSON: %w", err)
	}
	ro := fullRollout
	if raw.Phased != nil {
		p := *raw.Phased
		if p < 0 || p > 100 || p != float64(int(p)) {
			return fullRollout, fmt.Errorf("phased_percentage %v: want a whole number from 0 to 100", p)
		}
		ro.Phased = int(p)
	}
	if raw.Withdrawn != nil {
		ro.Withdrawn = *raw.Withdrawn
	}
	return ro, nil
}

// machineID is the root's /etc/machine-id, the appliance's identity in a
// phased rollout; "" when it has none (every phase below 100 % then
// waits).
func (e *Engine) machineID() string {
	b, err := os.ReadFile(e.Root.Path(rootfs.MachineID))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// rollouts reads the rollout of every release found, hintWorkers at a
// time: each may fetch a release.json (and verify its SHA256SUMS).
func (e *Engine) rollouts(ctx context.Context, releases map[string]source.Result) map[string]Rollout {
	e.initLookupSums()
	mid := e.machineID()
	out := map[string]Rollout{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, hintWorkers)
	for name, r := range releases {
		if r.Err != nil || r.Release == nil {
			continue
		}
		pol := e.policy(name).Signature // not safe to share: resolved here
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ro := e.rolloutOf(ctx, name, r.Release, pol, mid)
			mu.Lock()
			out[name] = ro
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
