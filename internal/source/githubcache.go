package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// releaseEntry is a remembered "latest release" answer.
type releaseEntry struct {
	Key  string          `json:"key"` // host + path of the request
	ETag string          `json:"etag"`
	Body json.RawMessage `json:"body"`
}

// cache keeps release answers and small asset bodies in memory and, when dir
// is set, on disk (files readable by everyone: `list` runs unprivileged):
//
//	DIR/releases/<sha256(key)>.json   {"key", "etag", "body"}
//	DIR/assets/<id>-<digest hex|size-N>  raw bytes of .manifest and release.json
//
// Disk errors never fail a lookup: the cache is an optimization, except for
// Cached, which then reports ErrNotCached.
type githubCache struct {
	dir      string
	mu       sync.Mutex
	releases map[string]releaseEntry
	assets   map[string][]byte
	renames  map[string]string // old repo path prefix -> new
	flags    map[string]bool   // "owner/repo|IMAGE_CODENAME_ARCH": ask the release list first
	loaded   bool              // renames and flags read from disk
}

func newGitHubCache(dir string) *githubCache {
	return &githubCache{dir: dir, releases: map[string]releaseEntry{}, assets: map[string][]byte{}, renames: map[string]string{}, flags: map[string]bool{}}
}

func (c *githubCache) releasePath(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, "releases", hex.EncodeToString(sum[:16])+".json")
}

func (c *githubCache) release(key string) (releaseEntry, bool) {
	c.mu.Lock()
	ent, ok := c.releases[key]
	c.mu.Unlock()
	if ok || c.dir == "" {
		return ent, ok
	}
	b, err := os.ReadFile(c.releasePath(key))
	if err != nil {
		return releaseEntry{}, false
	}
	if ent, ok = decodeEntry(b); !ok || ent.Key != key {
		return releaseEntry{}, false
	}
	c.mu.Lock()
	c.releases[key] = ent
	c.mu.Unlock()
	return ent, true
}

func (c *githubCache) putRelease(key string, ent releaseEntry) {
	ent.Key = key
	if !json.Valid(ent.Body) {
		return
	}
	c.mu.Lock()
	c.releases[key] = ent
	c.mu.Unlock()
	if c.dir == "" {
		return
	}
	_ = writeAtomic(c.releasePath(key), encodeEntry(ent))
}

// entryMagic starts a cached release file: the magic line, the key, the
// ETag, then the body as GitHub sent it. Reading it is one scan of the
// body (by the caller's decoder), not two.
const entryMagic = "sysextd-release-cache 2\n"

func encodeEntry(ent releaseEntry) []byte {
	var b bytes.Buffer
	b.WriteString(entryMagic)
	b.WriteString(strings.ReplaceAll(ent.Key, "\n", ""))
	b.WriteByte('\n')
	b.WriteString(strings.ReplaceAll(ent.ETag, "\n", ""))
	b.WriteByte('\n')
	b.Write(ent.Body)
	return b.Bytes()
}

func decodeEntry(b []byte) (releaseEntry, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(entryMagic))
	if !ok {
		return releaseEntry{}, false
	}
	key, rest, ok1 := bytes.Cut(rest, []byte("\n"))
	etag, body, ok2 := bytes.Cut(rest, []byte("\n"))
	if !ok1 || !ok2 || len(body) == 0 {
		return releaseEntry{}, false
	}
	return releaseEntry{Key: string(key), ETag: string(etag), Body: body}, true
}

// repoPrefix is the "/repos/OWNER/REPO/" (or "/api/v3/repos/...",
// "/repositories/ID/") part of an API path, or "".
func repoPrefix(p string) string {
	for _, marker := range []string{"/repos/", "/repositories/"} {
		i := strings.Index(p, marker)
		if i < 0 {
			continue
		}
		rest := strings.Split(p[i+len(marker):], "/")
		n := 2
		if marker == "/repositories/" {
			n = 1
		}
		if len(rest) <= n {
			return ""
		}
		return p[:i+len(marker)] + strings.Join(rest[:n], "/") + "/"
	}
	return ""
}

// renamed maps an API path of a moved repository to its new place.
func (c *githubCache) renamed(p string) (string, bool) {
	old := repoPrefix(p)
	if old == "" {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loadRenames()
	n, ok := c.renames[old]
	if !ok {
		return "", false
	}
	return n + strings.TrimPrefix(p, old), true
}

// putRename remembers that the repository of path from now answers at to.
func (c *githubCache) putRename(from, to string) {
	oldP, newP := repoPrefix(from), repoPrefix(to)
	if oldP == "" || newP == "" || oldP == newP {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loadRenames()
	c.renames[oldP] = newP
	if c.dir != "" {
		if b, err := json.Marshal(c.renames); err == nil {
			_ = writeAtomic(filepath.Join(c.dir, "renames.json"), b)
		}
	}
}

// loadRenames reads the remembered moves and flags once. Caller holds c.mu.
func (c *githubCache) loadRenames() {
	if c.loaded || c.dir == "" {
		c.loaded = true
		return
	}
	c.loaded = true
	if b, err := os.ReadFile(filepath.Join(c.dir, "renames.json")); err == nil {
		m := map[string]string{}
		if json.Unmarshal(b, &m) == nil {
			maps.Copy(c.renames, m)
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.dir, "list-first.json")); err == nil {
		m := map[string]bool{}
		if json.Unmarshal(b, &m) == nil {
			maps.Copy(c.flags, m)
		}
	}
}

// flag reports a remembered "ask the list first" for key.
func (c *githubCache) flag(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loadRenames()
	return c.flags[key]
}

// setFlag remembers (or forgets) "ask the list first" for key.
func (c *githubCache) setFlag(key string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loadRenames()
	if c.flags[key] == on {
		return
	}
	if on {
		c.flags[key] = true
	} else {
		delete(c.flags, key)
	}
	if c.dir != "" {
		if b, err := json.Marshal(c.flags); err == nil {
			_ = writeAtomic(filepath.Join(c.dir, "list-first.json"), b)
		}
	}
}

// cachedAssetKey names a cached asset body; an asset re-uploaded to GitHub gets a
// new id, and a changed digest changes the key too.
func cachedAssetKey(a Asset) string {
	return fmt.Sprintf("%d-%s", a.ID, DigestKey(a))
}

func (c *githubCache) asset(a Asset) ([]byte, bool) {
	key := cachedAssetKey(a)
	c.mu.Lock()
	b, ok := c.assets[key]
	c.mu.Unlock()
	if ok || c.dir == "" {
		return b, ok
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "assets", key))
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	c.assets[key] = b
	c.mu.Unlock()
	return b, true
}

func (c *githubCache) putAsset(a Asset, b []byte) {
	key := cachedAssetKey(a)
	c.mu.Lock()
	c.assets[key] = b
	c.mu.Unlock()
	if c.dir != "" {
		_ = writeAtomic(filepath.Join(c.dir, "assets", key), b)
	}
}

// writeAtomic writes b to path through a temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	// Every write resolves inside the cache directory, which the wiring
	// checked stays inside the root (rootfs.Root.Contain).
	return rootfs.WriteUnder(filepath.Dir(path), filepath.Base(path), b, 0o644)
}
