package api

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// listTTL bounds how long a cached List answer is given out even when
// nothing it depends on looks changed.
const listTTL = 10 * time.Second

// listCache keeps the last List answer (from the cached release data) of a
// warm daemon, so that a web UI polling List costs a few stat(2) calls
// instead of an engine. The answer is reused while every file it depends on
// is unchanged (state, release snapshot, manifests, the image directories,
// the merged /usr and /opt), no event went out, and it is younger than
// listTTL.
type listCache struct {
	mu    sync.Mutex
	key   string
	at    time.Time
	reply json.RawMessage
	gen   atomic.Uint64 // bumped by every event and change
}

// listInputs are the in-root paths a List answer depends on.
var listInputs = []string{rootfs.StateDir, rootfs.StateDir + "/state.json", rootfs.CacheDir, rootfs.VendorManifest,
	rootfs.LocalManifest, rootfs.DropinDir, rootfs.ExtensionsDir, rootfs.EtcExtensionsDir, rootfs.RunExtensionsDir,
	rootfs.DaemonConfig, "/usr", "/opt"}

// fingerprint names the state of every input: device, inode, size and
// modification time, or its absence.
func (lc *listCache) fingerprint(root rootfs.Root, events uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%d;", lc.gen.Load(), events)
	for _, p := range listInputs {
		fi, err := os.Stat(root.Path(p))
		if err != nil {
			b.WriteString("-;")
			continue
		}
		var dev, ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			dev, ino = st.Dev, st.Ino
		}
		fmt.Fprintf(&b, "%d:%d:%d:%d;", dev, ino, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// get returns the cached answer for key, if fresh.
func (lc *listCache) get(key string, now time.Time) (json.RawMessage, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.reply == nil || lc.key != key || now.Sub(lc.at) > listTTL {
		return nil, false
	}
	return lc.reply, true
}

func (lc *listCache) put(key string, now time.Time, reply json.RawMessage) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.key, lc.at, lc.reply = key, now, reply
}

// invalidate drops the cached answer.
func (lc *listCache) invalidate() { lc.gen.Add(1) }
