package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/upgrade"
)

// PrefetchStaged fetches and verifies, for every installed extension, its
// build for the OS bootc has staged for the next boot, into
// /var/lib/sysextd/staged/KEY/IMAGE.raw (KEY: the staged OS's VERSION_ID,
// else its VERSION_CODENAME; upgrade.Key). The
// release choice, the image checks and the signature check target the
// staged OS; nothing in /var/lib/extensions changes. At the first boot of
// the new OS, ActivateStaged puts them in place with no network. The
// caller holds the lock. A result per extension says what happened.
func (e *Engine) PrefetchStaged(ctx context.Context, s *upgrade.StagedOS) []Result {
	inv, err := e.inventory(ctx)
	if err != nil {
		return []Result{failed("", OpNone, err)}
	}
	te := *e
	te.Facts = upgrade.TargetFacts(e.Facts, s)
	var reqs []source.Request
	for _, n := range inv.names() {
		if en := e.Manifests.Get(n); en != nil && inv.get(n).Present {
			reqs = append(reqs, request(en))
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	// Straight to the source: the list snapshot is for the booted OS.
	found := e.Source.LatestAll(ctx, reqs, te.target())
	var results []Result
	for _, r := range reqs {
		res := Result{Name: r.Name, Op: OpNone}
		f := found[r.Name]
		if f.Err != nil || f.Release == nil {
			err := f.Err
			if err == nil {
				err = errors.New("no release found")
			}
			results = append(results, failed(r.Name, OpNone, fmt.Errorf("looking up the %s build of %s: %w", s.VersionCodename, r.Name, err)))
			continue
		}
		rel := f.Release
		dst, err := upgrade.StagedImage(s.OS, r.Image)
		if err != nil {
			results = append(results, failed(r.Name, OpNone, err))
			continue
		}
		if info, err := image.InspectContext(ctx, e.Root.Path(dst)); err == nil &&
			info.Fields["PACKAGE_VERSION"] == rel.Version && info.Fields["BUILD_TIME"] == rel.BuildTime {
			res.OK, res.To, res.Message = true, rel.Version, fmt.Sprintf("%s %s for %s is staged already", r.Name, rel.Version, osName(s.OS))
			results = append(results, res)
			continue
		}
		step := Step{Op: OpInstall, Name: r.Name, Image: r.Image, To: rel.Version, Release: rel}
		e.resolveStep(&step, nil)
		t := &txn{e: &te, s: step}
		if err := t.run(ctx, []Phase{PhaseDownload, PhaseVerify}); err != nil {
			if t.dl != nil {
				os.Remove(t.dl.Path)
			}
			results = append(results, failed(r.Name, OpNone, fmt.Errorf("fetching the %s build of %s: %w", s.VersionCodename, r.Name, err)))
			continue
		}
		if err := e.store().Rename(e.Root.Rel(t.dl.Path), dst); err != nil {
			os.Remove(t.dl.Path)
			results = append(results, failed(r.Name, OpNone, fmt.Errorf("staging %s: %w", r.Name, err)))
			continue
		}
		res.OK, res.To = true, rel.Version
		res.Message = fmt.Sprintf("%s %s fetched and verified for %s, waiting for the reboot", r.Name, rel.Version, osName(s.OS))
		results = append(results, res)
	}
	if _, err := upgrade.Prune(e.Root, e.Facts.OS, s.OS); err != nil {
		e.log().Warn("pruning staged builds: " + err.Error())
	}
	return results
}

// ActivateStaged runs at start-up, before the network is needed: every
// build staged for the OS now booted replaces the installed image of the
// same name through the usual transaction (place, refresh and confirm,
// units, update action, commit; rolled back if it does not merge). It is
// what keeps hypervisor tools working across an OS upgrade. Consumed
// builds and those for other OS versions are removed. The caller holds the
// lock.
func (e *Engine) ActivateStaged(ctx context.Context) []Result {
	paths, err := upgrade.ForBoot(e.Root, e.Facts)
	if err != nil {
		e.log().Warn("staged builds that do not fit this OS are left alone: " + err.Error())
	}
	defer func() {
		if _, err := upgrade.Prune(e.Root, e.Facts.OS); err != nil {
			e.log().Warn("pruning staged builds: " + err.Error())
		}
	}()
	if len(paths) == 0 {
		return nil
	}
	inv, err := e.inventory(ctx)
	if err != nil {
		return []Result{failed("", OpNone, err)}
	}
	p := newPlan("activate-staged")
	for _, path := range paths {
		img := strings.TrimSuffix(filepath.Base(path), ".raw")
		var cur *installed
		for _, n := range inv.names() {
			if in := inv.get(n); in.Image == img && in.Record != nil {
				cur = in
			}
		}
		if cur == nil {
			continue // removed since: Prune takes it
		}
		info, err := image.InspectContext(ctx, path)
		if err != nil {
			p.fail(cur.Name, fmt.Errorf("staged build %s: %w", path, err))
			continue
		}
		v := info.Fields["PACKAGE_VERSION"]
		if cur.Broken == "" && cur.Version == v && cur.BuildTime == info.Fields["BUILD_TIME"] {
			continue
		}
		fi, _ := os.Stat(path)
		rel := &source.Release{Name: cur.Name, Tag: "staged", Version: v, BuildTime: info.Fields["BUILD_TIME"], Fields: info.Fields,
			Image: source.Asset{Name: filepath.Base(path), Size: fi.Size()}}
		p.Steps = append(p.Steps, Step{Op: OpUpdate, Name: cur.Name, Image: img, From: cur.Version, To: v,
			Reason: "its build for this OS was fetched before the upgrade", By: cur.By, Release: rel, Local: path, Verified: true})
	}
	e.resolve(p, inv)
	results := e.Apply(ctx, p)
	for _, r := range results {
		for _, s := range p.Steps {
			if r.OK && r.Name == s.Name && s.Local != "" {
				os.Remove(s.Local)
			}
		}
	}
	return results
}

// osName is "ID VERSION_ID (VERSION_CODENAME)" without the parts the OS
// lacks: "debian 14 (forky)", or "debian forky" on testing.
func osName(id osrelease.OS) string {
	switch {
	case id.VersionID == "":
		return strings.TrimSpace(id.ID + " " + id.VersionCodename)
	case id.VersionCodename == "":
		return id.ID + " " + id.VersionID
	}
	return fmt.Sprintf("%s %s (%s)", id.ID, id.VersionID, id.VersionCodename)
}
