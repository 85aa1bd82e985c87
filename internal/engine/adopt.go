package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// Adopt takes over what sysext.pl left: it saved images as KEY.raw, which
// systemd refuses for an image whose extension-release is sysext-KEY. Such
// a file is renamed to IMAGE.raw, its KEY.manifest moved out of the
// extension directory into the state directory, and a state record made.
// It returns the adopted names; the caller refreshes. The caller holds the
// lock.
func (e *Engine) Adopt() ([]string, error) {
	st := e.store()
	state, err := st.LoadState()
	if err != nil {
		return nil, err
	}
	var adopted []string
	for _, name := range e.manifestNames() {
		en := e.Manifests.Get(name)
		img := en.Image()
		old := st.ImagePath(name)
		if img == name || exists(st.ImagePath(img)) || !exists(old) {
			continue
		}
		info, err := image.Inspect(old)
		if err != nil || info.Name != img {
			e.log().Warn("not adopting leftover image", "path", old, "err", err, "extension", name)
			continue
		}
		if err := os.Rename(old, st.ImagePath(img)); err != nil {
			return adopted, fmt.Errorf("adopting %s: %w", old, err)
		}
		fields := info.Fields
		oldManifest := e.Root.Path(rootfs.ExtensionsDir + "/" + name + ".manifest")
		if data, err := os.ReadFile(oldManifest); err == nil {
			fields = osrelease.Parse(data)
			keep := e.Root.Path(rootfs.StateDir + "/adopted/" + img + ".manifest")
			if err := os.MkdirAll(e.Root.Path(rootfs.StateDir+"/adopted"), 0o755); err == nil {
				if err := os.Rename(oldManifest, keep); err != nil {
					e.log().Warn("moving leftover manifest", "path", oldManifest, "err", err)
				}
			}
		}
		state.Extensions[name] = &store.Record{
			Name: name, Image: img, Version: fields["PACKAGE_VERSION"], BuildTime: fields["BUILD_TIME"],
			InstalledBy: store.ByManual, InstalledAt: e.now().UTC(), Adopted: true, Units: info.Units,
		}
		adopted = append(adopted, name)
		e.log().Info("adopted sysext.pl image", "extension", name, "image", img, "version", fields["PACKAGE_VERSION"])
	}
	if len(adopted) > 0 {
		return adopted, st.SaveState(state)
	}
	return nil, nil
}

// Activate makes sure every usable installed image is merged and its units
// run: what the daemon does at boot. It refreshes only when something is
// not merged yet.
func (e *Engine) Activate(ctx context.Context) error {
	inv, err := e.inventory(ctx)
	if err != nil {
		return err
	}
	need := false
	var units []string
	for _, n := range inv.names() {
		in := inv.get(n)
		if in.Present && in.Broken == "" {
			need = need || !inv.merged[in.Image]
			units = append(units, in.Units...)
		}
	}
	if need {
		if err := e.Sysext.Refresh(ctx); err != nil {
			return fmt.Errorf("activating installed extensions: %w", err)
		}
	}
	return e.startUnits(ctx, units)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}
