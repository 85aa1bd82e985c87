package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/merge"
	"github.com/spamtagger/sysextd/internal/payload"
	"github.com/spamtagger/sysextd/internal/shadow"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/trust"
)

// checkSignature verifies, before the image is even read, that the
// release's SHA256SUMS lists the image with the digest just computed and is
// signed by a key the plan's policy allows (internal/trust). A rollback to
// the kept previous image was verified when it was first installed.
func (t *txn) checkSignature(ctx context.Context) error {
	if t.s.Verified {
		return nil
	}
	e, s := t.e, t.s
	asset := s.Release.Image.Name
	sums, err := trust.VerifySums(ctx, s.Keyring, s.Policy.Signature, s.Name, releaseAssets{e.Source, s.Release}, asset)
	if err == nil {
		err = sums.Lists(s.Name, asset, strings.TrimPrefix(t.dl.SHA256, "sha256:"))
	}
	if err == nil {
		err = t.checkHints(ctx, sums)
	}
	if err == nil {
		err = t.checkSignedTime(sums.Verdict)
	}
	if err != nil {
		return fmt.Errorf("refusing %s (%s %s): %w", asset, s.Name, s.Release.Tag, err)
	}
	t.verdict = sums.Verdict
	if sums.Verdict.Signed {
		e.log().Info(fmt.Sprintf("%s: %s verified by %s key %s", s.Name, asset, sums.Verdict.Method, sums.Verdict), "extension", s.Name)
	}
	return nil
}

// checkHints checks the release's listing hints, its .manifest and
// release.json, against the signed SHA256SUMS: a mirror that edits them
// (an UPDATE= appended, a version changed) makes the release tampered,
// even though nothing the host acts on comes from them.
func (t *txn) checkHints(ctx context.Context, sums trust.Sums) error {
	return t.e.compareHints(ctx, t.s.Name, sums, t.s.Release)
}

// checkSignedTime refuses an update whose signature is older than the
// installed release's: a mirror cannot roll an appliance back to an older
// signed release by re-serving it.
func (t *txn) checkSignedTime(v trust.Verdict) error {
	if t.s.Op != OpUpdate || v.SignedAt.IsZero() || t.s.SignedAt.IsZero() {
		return nil
	}
	if v.SignedAt.Before(t.s.SignedAt) {
		return fmt.Errorf("its signature (%s) is older than the installed release's (%s): not an update; the source may be serving an old release",
			v.SignedAt.UTC().Format("2006-01-02 15:04:05Z"), t.s.SignedAt.UTC().Format("2006-01-02 15:04:05Z"))
	}
	return nil
}

// releaseAssets lets trust.Check read a release's small assets through
// whichever source found it.
type releaseAssets struct {
	src source.Source
	rel *source.Release
}

func (r releaseAssets) HasAsset(name string) bool { _, ok := r.rel.Assets[name]; return ok }

func (r releaseAssets) FetchAsset(ctx context.Context, name string) ([]byte, error) {
	a, ok := r.rel.Assets[name]
	if !ok {
		return nil, fmt.Errorf("the release has no asset %s", name)
	}
	return r.src.Fetch(ctx, a)
}

// verify reads the downloaded image and checks it against the host, the
// plan and the release's .manifest (the state records what the image
// says, so the image must say what the release promised), then resolves
// from the verified image alone what applying will act on: the update
// action, the units to start and the payload (docs/trust.md).
func (t *txn) verify(ctx context.Context) error {
	asset := t.s.Release.Image.Name
	refuse := func(err error) error {
		return fmt.Errorf("refusing %s (%s %s): %w", asset, t.s.Name, t.s.Release.Tag, err)
	}
	info, err := image.InspectNamed(ctx, t.dl.Path, asset)
	if err != nil {
		return fmt.Errorf("reading %s (%s %s): %w", asset, t.s.Name, t.s.Release.Tag, err)
	}
	warnings, err := image.Validate(info, t.e.host(), t.s.Image)
	if err != nil {
		return refuse(err)
	}
	for _, w := range warnings {
		t.e.log().Warn(t.s.Name+": "+w, "extension", t.s.Name)
	}
	for _, k := range []string{"PACKAGE_VERSION", "BUILD_TIME"} {
		if got, want := info.Fields[k], t.s.Release.Fields[k]; got != want {
			return refuse(fmt.Errorf("the image says %s=%q but the release's .manifest says %q", k, got, want))
		}
	}
	rep, err := t.checkShadowing(ctx)
	if err != nil {
		return refuse(err)
	}
	if t.act, err = t.resolveAction(ctx, info); err != nil {
		return refuse(err)
	}
	files, err := payload.Read(ctx, t.dl.Path)
	if err != nil {
		return refuse(err)
	}
	pv := payload.Check(files, t.s.Policy.AllowEtc, info.UnitFiles, payload.HostOf(t.e.Root, t.prevPayload()))
	if err := pv.Err(); err != nil {
		return refuse(err)
	}
	t.payloadFiles = pv.Files
	t.units = t.resolveUnits(uniq(append(slices.Clone(info.Units), pv.Enable...)), rep)
	t.info = info
	return ctx.Err()
}

// resolveAction is the step's update action: the local manifest's, from
// the plan; else the verified image's UPDATE=, which may only restart
// services the image itself ships. The image's EXTENSION_RESTART_UNITS=
// and EXTENSION_RELOAD_OR_RESTART_UNITS= (systemd#42368) are held to the
// same bound, since a systemd that reads them restarts them by itself at
// the merge; sysextd restarts them after an update only when the host's
// systemd-sysext does not (before 262), and never a second time.
func (t *txn) resolveAction(ctx context.Context, info *image.Info) (manifest.Action, error) {
	act := t.s.Act
	if t.s.ActionFrom == ActionFromImage {
		u := info.Fields["UPDATE"]
		var err error
		if act, err = manifest.ParseAction(u); err != nil {
			return manifest.Action{}, fmt.Errorf("its UPDATE=: %w", err)
		}
		if err := ownServices("UPDATE", act.Units, info); err != nil {
			return manifest.Action{}, err
		}
	}
	restart, reload, err := image.RestartUnits(info.Fields)
	if err != nil {
		return manifest.Action{}, err
	}
	listed := append(restart, reload...)
	if err := ownServices("EXTENSION_RESTART_UNITS/EXTENSION_RELOAD_OR_RESTART_UNITS", listed, info); err != nil {
		return manifest.Action{}, err
	}
	if len(listed) == 0 {
		return act, nil
	}
	if merge.RestartsUnitsItself(t.e.systemdVersion(ctx)) {
		// systemd-sysext restarted them at the refresh: not again.
		act.Units = without(act.Units, listed)
		if act.Kind == manifest.ActionService && len(act.Units) == 0 {
			act.Kind = manifest.ActionNone
		}
		return act, nil
	}
	if act.Kind == manifest.ActionNone {
		act.Kind = manifest.ActionService
	}
	if act.Kind == manifest.ActionService {
		act.Units = append(act.Units, without(listed, act.Units)...)
	}
	return act, nil
}

// ownServices refuses units an image names for restarting that are not
// .service units it ships itself.
func ownServices(field string, units []string, info *image.Info) error {
	for _, unit := range units {
		if !strings.HasSuffix(unit, ".service") {
			return fmt.Errorf("its %s names %s: only services are restarted (a target or other unit could stop the host)", field, unit)
		}
		if !slices.Contains(info.UnitFiles, unit) {
			return fmt.Errorf("its %s names %s, which the image does not ship: an image may only restart its own services (a local manifest's update = may name any)", field, unit)
		}
	}
	return nil
}

// resolveUnits drops, from the units the image would have started, those
// that hide a unit of the base tree, unless the entry says allow_shadow =
// true: an image must not replace ssh.service or systemd-logind.service
// by shipping one of the same name.
func (t *txn) resolveUnits(units []string, rep *shadow.Report) []string {
	if t.s.Policy.AllowShadow != nil && *t.s.Policy.AllowShadow {
		return units
	}
	var out []string
	for _, u := range units {
		if t.hidesBaseUnit(u, rep) {
			t.e.log().Warn(fmt.Sprintf("%s: not enabling or starting %s: it hides the base tree's %s (set allow_shadow = true in its manifest entry to allow it)",
				t.s.Name, u, image.UnitDir+"/"+u), "extension", t.s.Name, "unit", u)
			continue
		}
		out = append(out, u)
	}
	return out
}

func (t *txn) hidesBaseUnit(u string, rep *shadow.Report) bool {
	p := "/" + image.UnitDir + "/" + u
	if rep != nil {
		return slices.Contains(rep.Shadows, p)
	}
	if slices.Contains(t.s.OldUnits, u) {
		return false // the version being replaced ships it
	}
	_, err := os.Lstat(t.e.Root.Path(p))
	return err == nil
}

// checkShadowing warns about files the image would hide (the base's, or
// another extension's: the overlay order decides silently), and refuses
// them when the plan says allow_shadow = false. It returns the report, or
// nil when the image could not be listed (not squashfs).
func (t *txn) checkShadowing(ctx context.Context) (*shadow.Report, error) {
	strict := t.s.Policy.AllowShadow != nil && !*t.s.Policy.AllowShadow
	inst, err := shadow.Installed(t.e.store())
	var rep shadow.Report
	if err == nil {
		rep, err = shadow.Check(ctx, t.e.Root, t.dl.Path, inst)
	}
	if err != nil {
		if strict {
			return nil, fmt.Errorf("allow_shadow = false, but shadowing cannot be checked: %w", err)
		}
		t.e.log().Debug(t.s.Name + ": not checking shadowing: " + err.Error())
		return nil, nil
	}
	if strict {
		return &rep, rep.Refuse(t.s.Name)
	}
	if sum := rep.Summary(); sum != "" {
		t.e.log().Warn(t.s.Name+": "+sum, "extension", t.s.Name)
	}
	return &rep, nil
}
