package reliability

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
	"golang.org/x/sys/unix"
)

// TestDiskFullIsRefusedUpFront: with /var/lib on a 4 MiB tmpfs, installing
// an 8 MiB image is refused before the image is requested, saying how much
// room it needs, and nothing is written.
func TestDiskFullIsRefusedUpFront(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		b, srv := buildBins(t), newServers(t)
		noise := make([]byte, 4<<20) // incompressible: hex of random bytes
		rand.Read(noise)
		release.Publish(t, srv.old, release.Ext{Package: "delta", Version: "1.0-1", PublishedAt: time.Now(),
			Spec: sqfs.Spec{Files: map[string]string{"usr/share/delta/noise": hex.EncodeToString(noise)}}})
		w := newWorld(t, b, srv)
		os.WriteFile(w.root.Path(rootfs.VendorManifest), []byte(manifest+"\n[delta]\nurl = \"https://github.com/SpamTagger/sysext-delta\"\n"), 0o644)
		varLib := w.root.Path("/var/lib")
		if err := unix.Mount("tmpfs", varLib, "tmpfs", 0, "size=4m"); err != nil {
			t.Fatalf("mounting a small tmpfs on %s: %v", varLib, err)
		}
		t.Cleanup(func() { unix.Unmount(varLib, unix.MNT_DETACH) })
		os.MkdirAll(w.root.Path(rootfs.ExtensionsDir), 0o755)
		srv.old.ResetStats()
		o := w.start(b.ctl, srv.old.URL(), "", 0, "install", "delta")
		if o.code != 1 || !strings.Contains(o.stderr, "not enough space for sysext-delta_trixie_") || !strings.Contains(o.stderr, "MiB free") {
			t.Fatalf("install on a full disk: exit %d, stderr %q", o.code, o.stderr)
		}
		for _, r := range srv.old.Requests() {
			if strings.HasSuffix(r.Path, ".squashfs") {
				t.Errorf("the image was requested: %s", r.Path)
			}
		}
		if _, err := w.consistent(); err != nil {
			t.Error(err)
		}
		if es, _ := os.ReadDir(w.root.Path(rootfs.ExtensionsDir)); len(es) != 0 {
			t.Errorf("extensions dir holds %d entries", len(es))
		}
		// The same install fits once there is room.
		o = w.start(b.ctl, srv.old.URL(), "", 0, "install", "alpha")
		if o.code != 0 {
			t.Fatalf("a small install on the same tmpfs: exit %d: %s", o.code, o.stderr)
		}
	})
}
