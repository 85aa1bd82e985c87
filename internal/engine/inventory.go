package engine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sort"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/store"
)

// installed is what is on disk for one extension.
type installed struct {
	Name      string
	Image     string
	Version   string
	BuildTime string
	By        string
	Record    *store.Record // nil when the image was not installed by us
	Fields    map[string]string
	Units     []string
	// info is what Inspect read from the image (nil when it was not read).
	info    *image.Info
	Present bool   // the image file is in the store
	Broken  string // why the image cannot be used, "" when it can
}

// inventory is the store as found at the start of a run.
type inventory struct {
	state  *store.State
	byName map[string]*installed
	merged map[string]bool // image names systemd-sysext has merged
}

func (inv *inventory) get(name string) *installed {
	if in := inv.byName[name]; in != nil && (in.Present || in.Record != nil) {
		return in
	}
	return nil
}

// names returns every name with something installed, sorted.
func (inv *inventory) names() []string {
	var out []string
	for n := range inv.byName {
		if inv.get(n) != nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// inventory reads state, the store and what is merged. Images are inspected
// so that list can tell broken ones and versions of images we did not
// install ourselves.
func (e *Engine) inventory(ctx context.Context) (*inventory, error) {
	return e.inventoryWith(ctx, nil)
}

// inventoryWith is inventory, with local images (install FILE) known by
// their names as manifest entries are.
func (e *Engine) inventoryWith(ctx context.Context, local []LocalImage) (*inventory, error) {
	st, err := e.store().LoadState()
	if err != nil {
		return nil, err
	}
	inv := &inventory{state: st, byName: map[string]*installed{}, merged: map[string]bool{}}
	if e.Sysext != nil {
		merged, err := e.Sysext.Merged(ctx)
		if err != nil {
			e.log().Warn("cannot tell what is merged: "+err.Error(), "err", err)
		}
		for _, m := range merged {
			inv.merged[m] = true
		}
	}
	add := func(name, img string) *installed {
		if in := inv.byName[name]; in != nil {
			return in
		}
		in := &installed{Name: name, Image: img}
		inv.byName[name] = in
		return in
	}
	for _, name := range st.Names() {
		r := st.Extensions[name]
		in := add(name, r.Image)
		in.Record, in.Version, in.BuildTime, in.By, in.Units = r, r.Version, r.BuildTime, r.InstalledBy, r.Units
	}
	if e.Manifests != nil {
		for _, name := range e.Manifests.Names() {
			add(name, e.Manifests.Get(name).Image())
		}
	}
	for _, li := range local {
		add(li.Name, li.image(e.Manifests.Get(li.Name)))
	}
	onDisk, err := e.store().Installed()
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, in := range inv.byName {
		known[in.Image] = true
	}
	for _, img := range onDisk {
		if !known[img] {
			add(img, img)
		}
	}
	cache := loadInspectCache(e.Root)
	present := map[string]bool{}
	for _, in := range inv.byName {
		e.inspectInstalled(ctx, cache, in)
		if in.Present {
			present[in.Image+".raw"] = true
		}
	}
	if os.Geteuid() == 0 {
		cache.save(present)
	}
	return inv, nil
}

func (e *Engine) inspectInstalled(ctx context.Context, cache *inspectCache, in *installed) {
	path := e.store().ImagePath(in.Image)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if in.Record != nil {
			in.Broken = "image file " + path + " is missing"
		}
		return
	}
	in.Present = true
	info, err := cache.inspect(ctx, in.Image+".raw", path)
	if errors.Is(err, image.ErrNeedsDissect) && os.Geteuid() != 0 {
		// lz4 or compressed erofs: only root can read it (by mounting);
		// that is no reason to call it broken.
		return
	}
	if err != nil {
		in.Broken = err.Error()
		return
	}
	in.Fields = info.Fields
	in.info = info
	if _, err := image.Validate(info, e.host(), in.Image); err != nil {
		in.Broken = err.Error()
	}
	if in.Version == "" {
		in.Version = info.Fields["PACKAGE_VERSION"]
		in.BuildTime = info.Fields["BUILD_TIME"]
	}
	if in.Units == nil {
		in.Units = info.Units
	}
}
