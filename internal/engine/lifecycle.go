package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
)

// spaceReserve is left free on /var/lib beyond what a download needs.
const spaceReserve = 1 << 20

// preflight refuses a download that would not fit, before a byte is
// written. The previous image is kept by hard link and stays in place, so
// a step needs room for the new image only; the reserve keeps the state
// and journal writable.
func (e *Engine) preflight(dir string, s Step) error {
	need := s.Release.Image.Size
	if need <= 0 {
		return nil
	}
	free := e.FreeSpace
	if free == nil {
		free = freeSpace
	}
	avail, err := free(dir)
	if err != nil {
		return nil // cannot tell: the download's own write errors will
	}
	if uint64(need)+spaceReserve > avail {
		return fmt.Errorf("not enough space for %s (%s %s) in %s: it needs %s plus a %s reserve, %s free",
			s.Release.Image.Name, s.Name, s.Release.Tag, e.Root.Rel(dir), mib(uint64(need)), mib(spaceReserve), mib(avail))
	}
	return nil
}

// overriddenBy is the in-root path of an extension named image in a
// directory systemd-sysext searches before /var/lib/extensions
// (/etc/extensions, /run/extensions), or "". systemd merges the first one
// it finds by name, so with such an entry ours would never be merged, and a
// check by name would take the other one for ours.
func (e *Engine) overriddenBy(image string) string {
	for _, dir := range []string{rootfs.EtcExtensionsDir, rootfs.RunExtensionsDir} {
		for _, n := range []string{image + ".raw", image, image + ".raw.v", image + ".v"} {
			p := dir + "/" + n
			if _, err := os.Lstat(e.Root.Path(p)); err == nil {
				return p
			}
		}
	}
	return ""
}

// overridden refuses a step whose image another of the same name would
// hide from systemd-sysext.
func (e *Engine) overridden(s Step) error {
	if p := e.overriddenBy(s.Image); p != "" {
		return fmt.Errorf("refusing %s (%s): %s takes precedence over %s/%s.raw (systemd-sysext merges the first image of a name it finds, /etc/extensions and /run/extensions before %s), so it would stay merged instead; remove or rename it first",
			s.Image, s.Name, p, rootfs.ExtensionsDir, s.Image, rootfs.ExtensionsDir)
	}
	return nil
}

func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// stageLocal copies an image file on this host into the staging directory,
// hashing it, as a download would.
func stageLocal(path, dir string) (*source.Downloaded, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".local-*.part")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return nil, err
	}
	return &source.Downloaded{Path: out.Name(), SHA256: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// ErrNoPrevious: nothing to roll back to.
var ErrNoPrevious = errors.New("no previous image is kept")

// RollbackPlan plans going back to the image the last successful update of
// name replaced, from /var/lib/sysextd/previous (no network). The step runs
// the same checks and update action as any update, and holds the extension
// until the operator unholds it.
func (e *Engine) RollbackPlan(ctx context.Context, name string) (*Plan, error) {
	inv, err := e.inventory(ctx)
	if err != nil {
		return nil, err
	}
	step, err := e.rollbackStep(ctx, inv, name)
	if err != nil {
		return nil, err
	}
	step.HoldAfter = "rolled back from " + step.From
	p := newPlan("rollback")
	p.Steps = append(p.Steps, step)
	e.resolve(p, inv)
	return p, nil
}

// rollbackStep is the step that puts name's kept previous image back.
func (e *Engine) rollbackStep(ctx context.Context, inv *inventory, name string) (Step, error) {
	cur := inv.get(name)
	if cur == nil || cur.Record == nil {
		return Step{}, &UnknownError{Names: []string{name}}
	}
	prev := cur.Record.Previous
	path := e.store().PreviousPath(cur.Image)
	if prev == nil {
		return Step{}, fmt.Errorf("rolling back %s: %w (only an update keeps the image it replaced)", name, ErrNoPrevious)
	}
	info, err := image.InspectContext(ctx, path)
	if err != nil {
		return Step{}, fmt.Errorf("rolling back %s: the kept image %s: %w", name, path, err)
	}
	if v := info.Fields["PACKAGE_VERSION"]; v != prev.Version {
		return Step{}, fmt.Errorf("rolling back %s: the kept image %s is %s, the state expected %s", name, path, v, prev.Version)
	}
	fi, _ := os.Stat(path)
	rel := &source.Release{Name: name, Tag: prev.Tag, Version: prev.Version, BuildTime: info.Fields["BUILD_TIME"], Fields: info.Fields,
		Image: source.Asset{Name: filepath.Base(path), Size: fi.Size()}}
	return Step{Op: OpUpdate, Name: name, Image: cur.Image, From: cur.Version, To: prev.Version,
		Reason: "rollback to the previous image", By: cur.By, Release: rel, Local: path, Verified: true}, nil
}

// SetHold holds or releases name, and sets or clears its pin (pin "" and
// setPin true clears it). The caller holds the lock.
func (e *Engine) SetHold(name string, hold bool, reason string) error {
	if !hold {
		if done, err := e.unwithhold(name); done || err != nil {
			return err
		}
	}
	return e.updateRecord(name, func(r *store.Record) {
		r.Hold, r.HoldReason = hold, reason
		if !hold {
			r.HoldReason = ""
		}
	})
}

// SetPin pins name to version ("" unpins). The caller holds the lock.
func (e *Engine) SetPin(name, version string) error {
	return e.updateRecord(name, func(r *store.Record) { r.Pin = version })
}

func (e *Engine) updateRecord(name string, fn func(*store.Record)) error {
	st := e.store()
	state, err := st.LoadState()
	if err != nil {
		return err
	}
	r := state.Extensions[name]
	if r == nil {
		return fmt.Errorf("%s is not installed", name)
	}
	fn(r)
	return st.SaveState(state)
}
