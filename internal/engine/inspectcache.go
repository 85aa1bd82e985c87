package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// inspectCache remembers what image.Inspect read from each installed image,
// keyed by the file's identity (device, inode, size, modification time):
// an image in the store is only ever replaced by a rename, which changes
// the inode, so a matching identity means the same bytes. list then never
// re-reads an image it has seen (an image with thousands of units costs
// seconds to read). The cache lives in /var/cache/sysextd; a reader that
// cannot write it (list as a user) still uses it.
type inspectCache struct {
	root    rootfs.Root
	entries map[string]cachedInfo // image file name -> entry
	dirty   bool
}

type cachedInfo struct {
	ID      string      `json:"id"`
	Version int         `json:"version,omitempty"`
	Info    *image.Info `json:"info"`
}

// inspectVersion changes whenever image.Info gains what an older entry
// lacks: such an entry is read again. 2: UnitDirs, UnitLinks, ManagerDirs.
const inspectVersion = 2

const inspectCacheFile = rootfs.CacheDir + "/inspect.json"

func loadInspectCache(root rootfs.Root) *inspectCache {
	c := &inspectCache{root: root, entries: map[string]cachedInfo{}}
	if b, err := os.ReadFile(root.Path(inspectCacheFile)); err == nil {
		if json.Unmarshal(b, &c.entries) != nil {
			c.entries = map[string]cachedInfo{}
		}
	}
	return c
}

func fileID(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("%s: no inode information", path)
	}
	return fmt.Sprintf("%d:%d:%d:%d", st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano()), nil
}

// inspect returns the image's Info, from the cache when the file is the
// one seen before.
func (c *inspectCache) inspect(ctx context.Context, name, path string) (*image.Info, error) {
	id, err := fileID(path)
	if err != nil {
		return nil, err
	}
	if e, ok := c.entries[name]; ok && e.ID == id && e.Version == inspectVersion && e.Info != nil {
		info := *e.Info
		info.Path = path
		return &info, nil
	}
	info, err := image.InspectContext(ctx, path)
	if err != nil {
		return nil, err
	}
	c.entries[name], c.dirty = cachedInfo{ID: id, Version: inspectVersion, Info: info}, true
	return info, nil
}

// save writes the cache back when it changed and the caller may write it;
// failures only cost a re-read next time.
func (c *inspectCache) save(present map[string]bool) {
	for n := range c.entries {
		if !present[n] {
			delete(c.entries, n)
			c.dirty = true
		}
	}
	if !c.dirty {
		return
	}
	b, err := json.Marshal(c.entries)
	if err != nil {
		return
	}
	_ = store.Store{Root: c.root}.WriteFile(inspectCacheFile, b, 0o644)
}
