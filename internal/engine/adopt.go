package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// Adoption is what Adopt did.
type Adoption struct {
	Adopted []string // manifest names whose sysext.pl image was taken over
	// Moved says, one sentence each, which leftovers were moved out of
	// /var/lib/extensions and why.
	Moved []string
}

// Adopt takes over what sysext.pl left: it saved images as KEY.raw, which
// systemd refuses for an image whose extension-release is sysext-KEY (and
// with it, the whole refresh). Such a file is renamed to IMAGE.raw when no
// IMAGE.raw exists and it really is that image; otherwise (a duplicate
// beside an installed image, an unreadable file, another image's name) it
// is moved to /var/lib/sysextd/quarantine, so that it can never block the
// other extensions. KEY.manifest files move to /var/lib/sysextd/adopted.
// The caller holds the lock and refreshes when something changed.
func (e *Engine) Adopt() (Adoption, error) {
	var ad Adoption
	st := e.store()
	state, err := st.LoadState()
	if err != nil {
		return ad, err
	}
	for _, name := range e.manifestNames() {
		img := e.Manifests.Get(name).Image()
		oldRel := rootfs.ExtensionsDir + "/" + name + ".raw"
		if img == name || !exists(e.Root.Path(oldRel)) {
			continue
		}
		info, ierr := image.Inspect(e.Root.Path(oldRel))
		switch {
		case ierr == nil && info.Name == img && !exists(st.ImagePath(img)):
			if err := st.Rename(oldRel, rootfs.ExtensionsDir+"/"+img+".raw"); err != nil {
				return ad, fmt.Errorf("adopting %s: %w", oldRel, err)
			}
			fields := info.Fields
			oldManifest := rootfs.ExtensionsDir + "/" + name + ".manifest"
			if data, err := os.ReadFile(e.Root.Path(oldManifest)); err == nil {
				fields = osrelease.Parse(data)
			}
			state.Extensions[name] = &store.Record{
				Name: name, Image: img, Version: fields["PACKAGE_VERSION"], BuildTime: fields["BUILD_TIME"],
				InstalledBy: store.ByManual, InstalledAt: e.now().UTC(), Adopted: true, Units: info.Units,
			}
			ad.Adopted = append(ad.Adopted, name)
			e.log().Info("adopted sysext.pl image "+name+" as "+img+" "+fields["PACKAGE_VERSION"], "extension", name)
		default:
			why := "a newer " + img + ".raw is installed"
			switch {
			case ierr != nil:
				why = "it cannot be read: " + ierr.Error()
			case info.Name != img:
				why = fmt.Sprintf("its extension-release names %q, not %q", info.Name, img)
			}
			to, err := st.Quarantine(oldRel)
			if err != nil {
				return ad, fmt.Errorf("moving sysext.pl leftover %s aside: %w", oldRel, err)
			}
			msg := fmt.Sprintf("moved sysext.pl leftover %s to %s: %s (systemd-sysext would refuse it, and every other extension with it)", oldRel, to, why)
			ad.Moved = append(ad.Moved, msg)
			e.log().Warn(msg, "extension", name)
		}
		oldManifest := rootfs.ExtensionsDir + "/" + name + ".manifest"
		if exists(e.Root.Path(oldManifest)) {
			if err := st.Rename(oldManifest, rootfs.StateDir+"/adopted/"+img+".manifest"); err != nil {
				e.log().Warn("moving leftover manifest "+oldManifest+": "+err.Error(), "extension", name)
			}
		}
	}
	if len(ad.Adopted) > 0 {
		return ad, st.SaveState(state)
	}
	return ad, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}
