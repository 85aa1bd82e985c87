package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spamtagger/sysextd/internal/fetch"
	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/payload"
	"github.com/spamtagger/sysextd/internal/shadow"
	"github.com/spamtagger/sysextd/internal/trust"
)

// checkSignature verifies, before the image is even read, that the
// release's SHA256SUMS lists the image with the digest just computed and is
// signed by a key the plan's policy allows (internal/trust). A rollback to
// the kept previous image was verified when it was first installed.
func (t *txn) checkSignature(ctx context.Context) error {
	if t.s.Local != "" {
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
	src Source
	rel *fetch.Release
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
	if t.act, err = t.resolveAction(info); err != nil {
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
// services the image itself ships.
func (t *txn) resolveAction(info *image.Info) (manifest.Action, error) {
	if t.s.ActionFrom != ActionFromImage {
		return t.s.Act, nil
	}
	u := info.Fields["UPDATE"]
	act, err := manifest.ParseAction(u)
	if err != nil {
		return manifest.Action{}, fmt.Errorf("its UPDATE=: %w", err)
	}
	for _, unit := range act.Units {
		if !slices.Contains(info.UnitFiles, unit) {
			return manifest.Action{}, fmt.Errorf("its UPDATE=%q names %s, which the image does not ship: an image may only restart its own services (a local manifest's update = may name any)", u, unit)
		}
	}
	return act, nil
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
