package engine

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// manyUnits installs an image shipping n enableable units into b's store.
func manyUnits(tb testing.TB, b *bench, n int) string {
	tb.Helper()
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("usr/lib/systemd/system/u%05d.service", i)] = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
	}
	src := sqfs.Build(tb, tb.TempDir(), sqfs.Spec{Name: "sysext-alpha", Release: sqfs.DefaultRelease("sysext-alpha"), Files: files})
	dst := store.Store{Root: b.e.Root}.ImagePath("sysext-alpha")
	data, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	os.MkdirAll(dst[:len(dst)-len("/sysext-alpha.raw")], 0o755)
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// TestInspectCacheSkipsSeenImages: the second inventory takes the image's
// contents from the cache (proved by changing the bytes behind an
// unchanged identity), and a replaced image (new inode) is read again.
func TestInspectCacheSkipsSeenImages(t *testing.T) {
	b := newBench(t)
	path := manyUnits(t, b, 3)
	inv, err := b.e.inventory(context.Background())
	if err != nil || inv.get("alpha") == nil || len(inv.get("alpha").Units) != 3 {
		t.Fatalf("first inventory: %+v, %v", inv, err)
	}
	fi, _ := os.Stat(path)
	// Same size, same mtime, same inode: the cache must answer.
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt([]byte("garbage!"), 0)
	f.Close()
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	inv, _ = b.e.inventory(context.Background())
	if in := inv.get("alpha"); in.Broken != "" || len(in.Units) != 3 {
		t.Fatalf("second inventory re-read the image: %+v", in)
	}
	// A new file (as every install renames one in) is read again.
	data, _ := os.ReadFile(path)
	os.Remove(path)
	os.WriteFile(path, data, 0o644)
	os.Chtimes(path, time.Now().Add(time.Second), time.Now().Add(time.Second))
	inv, _ = b.e.inventory(context.Background())
	if in := inv.get("alpha"); in.Broken == "" {
		t.Fatalf("a replaced, corrupt image was served from the cache: %+v", in)
	}
}

// BenchmarkInventory1000Units measures what list --offline pays per call for
// an installed image shipping 1,000 units, with the cache (warm) and
// without it (every call reads the image).
func BenchmarkInventory1000Units(bm *testing.B) {
	for _, cached := range []bool{true, false} {
		bm.Run(fmt.Sprintf("cached=%v", cached), func(bm *testing.B) {
			b := newBench(bm)
			manyUnits(bm, b, 1000)
			b.e.inventory(context.Background())
			for bm.Loop() {
				if !cached {
					os.Remove(b.e.Root.Path(inspectCacheFile))
				}
				if _, err := b.e.inventory(context.Background()); err != nil {
					bm.Fatal(err)
				}
			}
		})
	}
}
