package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// watchManifests signals on the returned channel when a manifest file
// changes, debounced. inotify blocks in the kernel: no CPU while idle.
// Directories that do not exist at start are not watched.
func (d *Daemon) watchManifests(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.Log.Warn("not watching manifests: "+err.Error(), "err", err)
		return out
	}
	dirs := []string{filepath.Dir(rootfs.VendorManifest), filepath.Dir(rootfs.LocalManifest), rootfs.DropinDir}
	for _, dir := range dirs {
		if err := w.Add(d.Root.Path(dir)); err != nil {
			d.Log.Debug("not watching", "dir", dir, "err", err)
		}
	}
	go func() {
		defer w.Close()
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if strings.HasSuffix(ev.Name, ".toml") {
					fire = time.After(debounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.Log.Warn("watching manifests: "+err.Error(), "err", err)
			case <-fire:
				fire = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
