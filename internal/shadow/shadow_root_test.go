package shadow

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spamtagger/sysextd/internal/merge"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// TestShadowingIsReal merges, with the real systemd-sysext, two images
// that ship the same file and one that replaces a base file, and checks
// what Check reports against what the merged /usr shows: the image's copy
// hides the base's, and of two extensions the one whose image name sorts
// last wins (docs/systemd-sysext.md).
func TestShadowingIsReal(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		root := nsroot.NewRoot(t)
		if err := os.WriteFile(root.Path("/usr/bin/hello"), []byte("base"), 0o755); err != nil {
			t.Fatal(err)
		}
		place := func(name string, files map[string]string) string {
			rel := sqfs.DefaultRelease(name)
			rel["ID"], rel["VERSION_ID"] = nsroot.OSID, nsroot.OSVersionID
			img := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: name, Release: rel, Files: files})
			dst := root.Path(filepath.Join(rootfs.ExtensionsDir, name+".raw"))
			if err := os.Rename(img, dst); err != nil {
				t.Fatal(err)
			}
			return dst
		}
		zzz := place("sysext-zzz", map[string]string{"usr/bin/common": "zzz"})
		aaa := place("sysext-aaa", map[string]string{"usr/bin/common": "aaa", "usr/bin/hello": "aaa"})

		rep, err := Check(t.Context(), root, aaa, map[string]string{"zzz": zzz})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Shadows) != 1 || rep.Shadows[0] != "/usr/bin/hello" || len(rep.Overlaps) != 1 || rep.Overlaps[0].Path != "/usr/bin/common" {
			t.Fatalf("before the merge: %+v", rep)
		}
		wins := rep.Overlaps[0].Wins

		s := &merge.Sysext{Root: root}
		if err := s.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Unmerge(context.Background()) })
		read := func(p string) string {
			b, err := os.ReadFile(root.Path(p))
			if err != nil {
				return "<" + err.Error() + ">"
			}
			return string(b)
		}
		if got := read("/usr/bin/hello"); got != "aaa" {
			t.Errorf("merged /usr/bin/hello = %q, want the image's copy over the base's", got)
		}
		t.Logf("merged /usr/bin/common = %q", read("/usr/bin/common"))
		if got := read("/usr/bin/common"); got != "zzz" || wins != "sysext-zzz" {
			t.Errorf("merged /usr/bin/common = %q, Check said %s wins; want sysext-zzz's (the image name that sorts last)", got, wins)
		}

		// Merged, the base cannot be told from the overlay: what merged
		// images ship (aaa's own hello included) is not claimed to shadow it.
		rep, err = Check(t.Context(), root, aaa, map[string]string{"zzz": zzz, "aaa": aaa})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.BaseUnknown || len(rep.Overlaps) != 1 || len(rep.Shadows) != 0 {
			t.Errorf("after the merge: %+v; want BaseUnknown, the one overlap and no claim about the base", rep)
		}
	})
}
