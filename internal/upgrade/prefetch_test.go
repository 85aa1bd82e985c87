package upgrade

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// build puts an image built for debian versionID into the staged
// directory of dirVersion.
func build(t *testing.T, root rootfs.Root, dirVersion, name, versionID, codename string) string {
	t.Helper()
	p, err := StagedImage(dirVersion, name)
	if err != nil {
		t.Fatal(err)
	}
	rel := sqfs.DefaultRelease(name)
	rel["VERSION_ID"], rel["VERSION_CODENAME"] = versionID, codename
	dir := filepath.Dir(root.Path(p))
	os.MkdirAll(dir, 0o755)
	return sqfs.Build(t, dir, sqfs.Spec{Name: name, Release: rel, Files: map[string]string{"usr/bin/" + name: name}})
}

func TestForBootAndWaiting(t *testing.T) {
	root := rootfs.New(t.TempDir())
	good := build(t, root, "14", "sysext-hello", "14", "forky")
	build(t, root, "14", "sysext-wrong", "13", "trixie") // misfiled: built for 13
	build(t, root, "15", "sysext-hello", "15", "duke")
	booted := &facts.Facts{Arch: facts.HostArch(), OS: facts.OS{ID: "debian", VersionID: "14", VersionCodename: "forky"}}

	got, err := ForBoot(root, booted)
	if !slices.Equal(got, []string{good}) {
		t.Errorf("ForBoot = %q, want only the build for 14 %q", got, good)
	}
	if err == nil || !strings.Contains(err.Error(), "sysext-wrong") {
		t.Errorf("ForBoot error = %v; want the misfiled build named", err)
	}
	// An OS that is like debian (ID_LIKE) takes debian builds, as
	// systemd-sysext does.
	like := &facts.Facts{Arch: facts.HostArch(), OS: facts.OS{ID: "spamtagger", IDLike: "debian", VersionID: "14", VersionCodename: "forky"}}
	if got, _ := ForBoot(root, like); !slices.Equal(got, []string{good}) {
		t.Errorf("ForBoot on an OS with ID_LIKE=debian = %q, want the debian build %q", got, good)
	}
	if got, err := ForBoot(root, &facts.Facts{Arch: facts.HostArch(), OS: facts.OS{ID: "debian", VersionID: "13"}}); got != nil || err != nil {
		t.Errorf("ForBoot for an OS nothing waits for = %q, %v; want nothing", got, err)
	}

	w, err := Waiting(root)
	if err != nil || !slices.Equal(w["14"], []string{"sysext-hello", "sysext-wrong"}) || !slices.Equal(w["15"], []string{"sysext-hello"}) {
		t.Errorf("Waiting = %v, %v", w, err)
	}

	removed, err := Prune(root, "14", "")
	if err != nil || !slices.Equal(removed, []string{StagedRoot + "/15"}) {
		t.Errorf("Prune = %q, %v; want the builds for 15 removed", removed, err)
	}
	if _, err := os.Stat(good); err != nil {
		t.Errorf("Prune removed a build it was told to keep: %v", err)
	}
}

func TestStagedNames(t *testing.T) {
	for _, bad := range [][2]string{{"..", "a"}, {"14/../..", "a"}, {"", "a"}, {"14", "../x"}, {"14", ".hidden"}, {"14", ""}} {
		if p, err := StagedImage(bad[0], bad[1]); err == nil {
			t.Errorf("StagedImage(%q, %q) = %q; want an error", bad[0], bad[1], p)
		}
	}
	if p, err := StagedImage("14", "sysext-hello"); err != nil || p != "/var/lib/sysextd/staged/14/sysext-hello.raw" {
		t.Errorf("StagedImage = %q, %v", p, err)
	}
}

func TestTargetFacts(t *testing.T) {
	host := &facts.Facts{Arch: "amd64", OS: facts.OS{ID: "debian", VersionID: "13", VersionCodename: "trixie", SysextLevel: "1"}}
	host.Virtualization = "vmware"
	got := TargetFacts(host, &StagedOS{OS: osrelease.OS{ID: "spamtagger", IDLike: "debian", VersionID: "14", VersionCodename: "forky", SysextLevel: "2"}})
	if got.OS != (facts.OS{ID: "spamtagger", IDLike: "debian", VersionID: "14", VersionCodename: "forky", SysextLevel: "2"}) || got.Virtualization != "vmware" || got.Arch != "amd64" {
		t.Errorf("TargetFacts = %+v", got)
	}
	if host.OS.VersionID != "13" {
		t.Error("TargetFacts changed the host's facts")
	}
}
