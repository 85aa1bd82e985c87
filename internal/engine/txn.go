package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/payload"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/trust"
)

// Phase names one part of a step. A step runs its phases in this order;
// the first failure rolls back every phase done before it.
type Phase string

const (
	PhaseDownload Phase = "download" // fetch the image into staging
	PhaseVerify   Phase = "verify"   // read it and check it against the host and the release
	PhasePlace    Phase = "place"    // record the intent, keep the old image, rename the new one in
	PhasePayload  Phase = "payload"  // etc/ and var/ files onto the host like dpkg conffiles
	PhaseActivate Phase = "activate" // systemd-sysext refresh, then confirm what is merged
	PhaseUnits    Phase = "units"    // start the units the image ships
	PhaseAction   Phase = "action"   // the update action (service restart, reboot flag)
	PhaseCommit   Phase = "commit"   // record the outcome, drop the backups
)

// protectedTimeout bounds the part of a step that changes the host: it is
// not cancelled by SIGTERM, so sysextd.service's TimeoutStopSec must exceed
// it (packaging/sysextd.service).
const protectedTimeout = 5 * time.Minute

// protected detaches ctx from cancellation, with a bound, for the part of a
// step that changes the host and must complete or roll back.
func protected(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), protectedTimeout)
}

// txn is one step applied to the host: what each phase did, so that a
// rollback undoes exactly that.
type txn struct {
	e    *Engine
	s    Step
	done []Phase

	dl   *source.Downloaded
	info *image.Info
	st   *store.Txn
	// payload is what the payload phase changed in /etc and /var, and the
	// records of what the image carries.
	payloadChange payload.Change
	payloadRecs   []payload.File
	verdict       trust.Verdict
	// Resolved at verify from the verified image and the plan's policy:
	// the update action, the units to start, the payload to install.
	act          manifest.Action
	units        []string
	payloadFiles []image.PayloadFile
	// expected are images merged before the step that must be merged after
	// it; gone are images the step takes out.
	expected map[string]bool
	gone     map[string]bool
	action   string
}

// run executes phases in order; it stops at the first failure and rolls
// back. Failpoints "OP:PHASE:before|after" surround each phase.
func (t *txn) run(ctx context.Context, phases []Phase) error {
	for _, p := range phases {
		if t.e.BeforeMerge && (p == PhaseActivate || p == PhaseUnits || p == PhaseAction) {
			continue // the boot merges, starts the units and is the action
		}
		t.e.hit(string(t.s.Op) + ":" + string(p) + ":before")
		t.e.phase(t.s.Name, p)
		if p == PhasePlace {
			// From here on the host changes: a cancelled run (SIGTERM)
			// finishes or rolls back the step rather than leave it half done.
			var cancel context.CancelFunc
			ctx, cancel = protected(ctx)
			defer cancel()
		}
		if err := t.phase(ctx, p); err != nil {
			return t.rollback(ctx, p, err)
		}
		t.done = append(t.done, p)
		t.e.hit(string(t.s.Op) + ":" + string(p) + ":after")
	}
	return nil
}

func (t *txn) phase(ctx context.Context, p Phase) error {
	switch p {
	case PhaseDownload:
		return t.download(ctx)
	case PhaseVerify:
		if err := t.checkSignature(ctx); err != nil {
			return err
		}
		return t.verify(ctx)
	case PhasePlace:
		return t.place(ctx)
	case PhasePayload:
		return t.payload(ctx)
	case PhaseActivate:
		return t.activate(ctx)
	case PhaseUnits:
		return t.startUnits(ctx)
	case PhaseAction:
		return t.applyAction(ctx)
	case PhaseCommit:
		return t.commit()
	}
	return fmt.Errorf("unknown phase %q", p)
}

func (t *txn) download(ctx context.Context) error {
	staging, err := t.e.store().StagingDir()
	if err != nil {
		return err
	}
	a := t.s.Release.Image
	if err := t.e.overridden(t.s); err != nil {
		return err
	}
	if t.s.Local != "" && t.s.Verified {
		dl, err := stageLocal(t.s.Local, staging)
		if err != nil {
			return fmt.Errorf("staging %s (%s): %w", t.s.Local, t.s.Name, err)
		}
		t.dl = dl
		return nil
	}
	if err := t.crossCheck(ctx); err != nil {
		return err
	}
	if err := t.e.preflight(staging, t.s); err != nil {
		return err
	}
	dl, err := t.e.Source.Download(ctx, a, staging)
	if err != nil {
		return fmt.Errorf("downloading %s (%s %s): %w", a.Name, t.s.Name, t.s.Release.Tag, err)
	}
	t.dl = dl
	return nil
}

// crossCheck refuses, before the image is downloaded, a release whose
// release.json names another package version than its .manifest; a
// malformed release.json is only logged.
func (t *txn) crossCheck(ctx context.Context) error {
	w, err := source.CrossCheck(ctx, t.s.Release, t.e.target(), t.e.Source.Fetch)
	if w != "" {
		t.e.log().Warn("extension "+t.s.Name+": "+w, "extension", t.s.Name)
	}
	return err
}

// place records the intent, keeps the previous images and puts the new one
// in (or takes the removed one out).
func (t *txn) place(ctx context.Context) error {
	e, s := t.e, t.s
	t.expected, t.gone = map[string]bool{}, map[string]bool{}
	// Whatever is merged now and stays in the store must still be merged
	// afterwards: a step may never cost the host another extension.
	// Before the merge (BeforeMerge, no Sysext) nothing is merged to keep.
	if merged, err := e.merged(ctx); err == nil {
		for _, m := range merged {
			if _, err := os.Stat(e.store().ImagePath(m)); err == nil {
				t.expected[m] = true
			}
		}
	}
	in := store.Intent{Op: string(s.Op), Name: s.Name, Started: e.now().UTC()}
	var restore, stop []string
	for _, r := range s.Removing {
		in.Images = append(in.Images, store.ImageIntent{Image: r.Image})
		stop = append(stop, r.Units...)
		t.gone[r.Image] = true
	}
	if s.Op != OpRemove {
		in.KeepPrevious = s.Op == OpUpdate
		in.Images = append(in.Images, store.ImageIntent{Image: s.Image, Place: true})
		in.NewUnits = without(t.units, s.OldUnits)
		restore = append(restore, s.OldUnits...)
		if s.Op == OpUpdate {
			restore = append(restore, t.act.Units...)
		}
	}
	in.RestoreUnits = uniq(append(restore, stop...))
	tx, err := e.store().Begin(in)
	if err != nil {
		return err
	}
	t.st = tx
	e.stopUnits(ctx, stop)
	if err := tx.Keep(); err != nil {
		return err
	}
	for _, r := range s.Removing {
		if err := tx.Take(r.Image); err != nil {
			return err
		}
	}
	if s.Op != OpRemove {
		if err := tx.Place(t.dl.Path, s.Image); err != nil {
			return err
		}
		t.expected[s.Image] = true
	}
	return nil
}

// merged is what systemd-sysext has merged; nothing before the merge.
func (e *Engine) merged(ctx context.Context) ([]string, error) {
	if e.Sysext == nil {
		return nil, nil
	}
	return e.Sysext.Merged(ctx)
}

// payloadJournal is where the payload phase writes its undo steps before
// making each change, so that Recover can put /etc back after a kill.
func (e *Engine) payloadJournal() string {
	return e.Root.Path(rootfs.StateDir + "/payload-undo.jsonl")
}

// payload installs the image's etc/ and var/ files before the refresh, so
// that a unit started from the new image finds its configuration; a
// removal deletes the unmodified ones. Files the administrator changed are
// never touched (internal/payload, docs/design.md).
func (t *txn) payload(ctx context.Context) error {
	prev := t.prevPayload()
	if t.s.Op == OpRemove {
		ch, err := payload.Remove(ctx, t.e.Root, prev, t.e.payloadJournal())
		if err != nil {
			return fmt.Errorf("removing the etc/ files of %s: %w", t.s.Name, err)
		}
		t.payloadChange = ch
		return nil
	}
	recs, ch, err := payload.InstallFiles(ctx, t.e.Root, t.payloadFiles, prev, t.e.payloadJournal())
	if err != nil {
		return fmt.Errorf("installing the etc/ files of %s: %w", t.s.Name, err)
	}
	t.payloadChange, t.payloadRecs = ch, recs
	return nil
}

// prevPayload is the payload recorded for the extension and for those the
// step takes out: files of theirs the new image does not ship are removed
// when unmodified.
func (t *txn) prevPayload() []payload.File {
	st, err := t.e.store().LoadState()
	if err != nil {
		return nil
	}
	names := []string{t.s.Name}
	for _, rm := range t.s.Removing {
		if rm.Name != t.s.Name {
			names = append(names, rm.Name)
		}
	}
	var out []payload.File
	for _, n := range names {
		if r := st.Extensions[n]; r != nil {
			out = append(out, r.Payload...)
		}
	}
	return out
}

// explainer is a Merger that can say why systemd left images unmerged
// (merge.Sysext.Why).
type explainer interface {
	Why(ctx context.Context, images []string) string
}

// activate refreshes and checks that exactly the expected images merged.
func (t *txn) activate(ctx context.Context) error {
	if err := t.e.Sysext.Refresh(ctx); err != nil {
		return fmt.Errorf("refreshing extensions: %w", err)
	}
	merged, err := t.e.Sysext.Merged(ctx)
	if err != nil {
		return fmt.Errorf("checking what is merged: %w", err)
	}
	var missing, stale []string
	for img := range t.expected {
		if !t.gone[img] && !slices.Contains(merged, img) {
			missing = append(missing, img)
		}
	}
	for img := range t.gone {
		if slices.Contains(merged, img) {
			stale = append(stale, img)
		}
	}
	if len(missing) > 0 {
		missing = sortedList(missing)
		// systemd gives its reason only at debug level; the rollback
		// refreshes again anyway, so asking costs one refresh more.
		why := ""
		if x, ok := t.e.Sysext.(explainer); ok {
			why = x.Why(ctx, missing)
		}
		if why == "" {
			why = "it skips an image whose extension-release does not match the host without an error"
		}
		return fmt.Errorf("systemd-sysext did not merge %s: %s", strings.Join(missing, ", "), why)
	}
	if len(stale) > 0 {
		return fmt.Errorf("still merged after removal: %s", strings.Join(sortedList(stale), ", "))
	}
	return nil
}

func (t *txn) startUnits(ctx context.Context) error {
	if t.s.Op == OpRemove {
		if t.e.Units != nil {
			return t.e.Units.Reload(ctx)
		}
		return nil
	}
	if len(t.units) == 0 && t.info != nil {
		// An image with nothing to start may still configure a unit the
		// manager holds (a drop-in for a base service): that is a reload.
		configures, reloadOnly := t.info.ManagerChanges()
		return t.e.startUnitsUnloaded(ctx, nil, configures, reloadOnly)
	}
	return t.e.startUnits(ctx, t.units)
}

func (t *txn) applyAction(ctx context.Context) error {
	if t.s.Op != OpUpdate {
		return nil
	}
	if err := t.e.applyAction(ctx, t.s.Name, t.act, t.info.Fields); err != nil {
		return fmt.Errorf("%s: %w", t.s.Name, err)
	}
	t.action = t.act.String()
	return nil
}

func (t *txn) commit() error {
	s := t.s
	pr := t.newProbation(context.Background()) // rollout: probation.go
	err := t.st.Commit(func(state *store.State) {
		setProbation(state, s, pr) // rollout: probation.go, in the commit's own write
		for _, r := range s.Removing {
			delete(state.Extensions, r.Name)
		}
		if s.Op == OpRemove {
			return
		}
		prev := state.Extensions[s.Name]
		by := s.By
		if by == "" && prev != nil {
			by = prev.InstalledBy
		}
		if by == "" {
			by = store.ByManual
		}
		rec := &store.Record{
			Name: s.Name, Image: s.Image, Tag: s.Release.Tag,
			Version: t.info.Fields["PACKAGE_VERSION"], BuildTime: t.info.Fields["BUILD_TIME"],
			Digest: t.dl.SHA256, InstalledBy: by, InstalledAt: t.e.now().UTC(), Units: t.units,
			Payload: t.payloadRecs, SignedBy: t.verdict.String(), SignedAt: t.verdict.SignedAt, Source: s.Release.Origin, Unverified: t.dl.Unverified,
		}
		if s.Verified && prev != nil && prev.Previous != nil {
			rec.SignedBy, rec.SignedAt, rec.Source = prev.Previous.SignedBy, prev.Previous.SignedAt, prev.Previous.Source
		}
		if prev != nil {
			rec.Pin = prev.Pin
			if s.Op == OpUpdate && prev.Image == s.Image {
				rec.Previous = &store.Previous{Tag: prev.Tag, Version: prev.Version, BuildTime: prev.BuildTime, Digest: prev.Digest, Units: prev.Units,
					SignedBy: prev.SignedBy, SignedAt: prev.SignedAt, Source: prev.Source}
			}
		}
		if s.HoldAfter != "" {
			rec.Hold, rec.HoldReason = true, s.HoldAfter
		}
		if s.PinAfter != "" {
			rec.Pin = s.PinAfter // rollout: pin.go
		}
		state.Extensions[s.Name] = rec
	})
	if (err == nil || t.st.Committed()) && t.payloadChange != nil {
		// The step stands: its etc/ changes stay (a journal left by a
		// failure here is dropped by the next Recover).
		if cerr := t.payloadChange.Commit(); cerr != nil {
			t.e.log().Warn(s.Name + ": " + cerr.Error())
		}
	}
	if err == nil {
		for _, r := range s.Removing {
			if derr := t.e.store().DropPrevious(r.Image); derr != nil {
				t.e.log().Warn(s.Name + ": dropping the kept previous image: " + derr.Error())
			}
		}
	}
	if err != nil && t.st.Committed() {
		// The step stands; the next Recover drops the leftover backup.
		t.e.log().Warn(s.Name + ": " + err.Error())
		return nil
	}
	return err
}

// install downloads, validates and activates one extension (a new install
// or an update), removing conflicting ones in the same transaction.
func (e *Engine) install(ctx context.Context, s Step) Result {
	t := &txn{e: e, s: s}
	err := t.run(ctx, []Phase{PhaseDownload, PhaseVerify, PhasePlace, PhasePayload, PhaseActivate, PhaseUnits, PhaseAction, PhaseCommit})
	if t.dl != nil {
		os.Remove(t.dl.Path) // gone already once placed
	}
	res := Result{Name: s.Name, Op: s.Op, From: s.From, To: s.To}
	if err != nil {
		return t.failure(res, err)
	}
	res.OK, res.Removed, res.Action = true, s.Removes, t.action
	verb := "installed"
	if s.Op == OpUpdate {
		verb = "updated from " + s.From + " to"
	}
	res.Message = fmt.Sprintf("%s %s %s", s.Name, verb, s.To)
	if len(s.Removes) > 0 {
		res.Message += fmt.Sprintf(" (removed conflicting %s)", strings.Join(s.Removes, ", "))
	}
	return res
}

// remove stops an extension's units, takes its image out and refreshes.
func (e *Engine) remove(ctx context.Context, s Step) Result {
	if len(s.Removing) == 0 {
		return Result{Name: s.Name, Op: OpNone, OK: true, Message: s.Name + " is not installed"}
	}
	t := &txn{e: e, s: s}
	err := t.run(ctx, []Phase{PhasePlace, PhasePayload, PhaseActivate, PhaseUnits, PhaseCommit})
	res := Result{Name: s.Name, Op: OpRemove, From: s.From}
	if err != nil {
		return t.failure(res, fmt.Errorf("removing %s: %w", s.Name, err))
	}
	res.OK, res.Message = true, "removed "+s.Name
	return res
}

func (t *txn) failure(res Result, err error) Result {
	r := failed(res.Name, res.Op, err)
	r.From, r.To = res.From, res.To
	var rb *RollbackError
	if errors.As(err, &rb) {
		r.RolledBack, r.Phase = true, string(rb.Phase)
	}
	return r
}
