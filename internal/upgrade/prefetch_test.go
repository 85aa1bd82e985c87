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
// directory of OS dir.
func build(t *testing.T, root rootfs.Root, dir osrelease.OS, name, versionID, codename string) string {
	t.Helper()
	p, err := StagedImage(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	rel := sqfs.DefaultRelease(name)
	rel["VERSION_ID"], rel["VERSION_CODENAME"] = versionID, codename
	d := filepath.Dir(root.Path(p))
	os.MkdirAll(d, 0o755)
	return sqfs.Build(t, d, sqfs.Spec{Name: name, Release: rel, Files: map[string]string{"usr/bin/" + name: name}})
}

func TestForBootAndWaiting(t *testing.T) {
	root := rootfs.New(t.TempDir())
	good := build(t, root, osrelease.OS{VersionID: "14"}, "sysext-hello", "14", "forky")
	build(t, root, osrelease.OS{VersionID: "14"}, "sysext-wrong", "13", "trixie") // misfiled: built for 13
	build(t, root, osrelease.OS{VersionID: "15"}, "sysext-hello", "15", "duke")
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

	removed, err := Prune(root, osrelease.OS{ID: "debian", VersionID: "14"}, osrelease.OS{ID: "debian"})
	if err != nil || !slices.Equal(removed, []string{StagedRoot + "/15"}) {
		t.Errorf("Prune = %q, %v; want the builds for 15 removed", removed, err)
	}
	if _, err := os.Stat(good); err != nil {
		t.Errorf("Prune removed a build it was told to keep: %v", err)
	}
}

func TestStagedNames(t *testing.T) {
	v := func(id string) osrelease.OS { return osrelease.OS{ID: "debian", VersionID: id} }
	bad := []struct {
		os    osrelease.OS
		image string
	}{
		{v(".."), "a"}, {v("14/../.."), "a"}, {v(""), "a"}, {v("14"), "../x"}, {v("14"), ".hidden"}, {v("14"), ""},
		{osrelease.OS{ID: "debian", VersionCodename: ".."}, "a"}, {osrelease.OS{ID: "debian", VersionCodename: "a/b"}, "a"},
	}
	for _, b := range bad {
		if p, err := StagedImage(b.os, b.image); err == nil {
			t.Errorf("StagedImage(%+v, %q) = %q; want an error", b.os, b.image, p)
		}
	}
	good := []struct {
		os   osrelease.OS
		want string
	}{
		{osrelease.OS{ID: "debian", VersionID: "14", VersionCodename: "forky"}, "/var/lib/sysextd/staged/14/sysext-hello.raw"},
		// Testing and sid have no VERSION_ID: the codename keys them.
		{osrelease.OS{ID: "debian", VersionCodename: "forky"}, "/var/lib/sysextd/staged/forky/sysext-hello.raw"},
	}
	for _, g := range good {
		if p, err := StagedImage(g.os, "sysext-hello"); err != nil || p != g.want {
			t.Errorf("StagedImage(%+v) = %q, %v; want %q", g.os, p, err, g.want)
		}
	}
}

func TestSameKey(t *testing.T) {
	trixie := osrelease.OS{ID: "debian", VersionID: "13", VersionCodename: "trixie"}
	forky := osrelease.OS{ID: "debian", VersionCodename: "forky"}
	sid := osrelease.OS{ID: "debian", VersionCodename: "sid"}
	tests := []struct {
		a, b osrelease.OS
		want bool
	}{
		{trixie, trixie, true},
		{forky, forky, true},
		{trixie, forky, false},
		{forky, sid, false}, // neither has VERSION_ID: the codenames differ
		{forky, osrelease.OS{ID: "debian", VersionID: "14", VersionCodename: "forky"}, false}, // released: another key
		{forky, osrelease.OS{ID: "ubuntu", VersionCodename: "forky"}, false},
		{osrelease.OS{ID: "debian"}, osrelease.OS{ID: "debian"}, false}, // no key: never the same
	}
	for _, tt := range tests {
		if got := SameKey(tt.a, tt.b); got != tt.want {
			t.Errorf("SameKey(%+v, %+v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// forky while it is testing has no VERSION_ID: its builds (VERSION_ID=14,
// VERSION_CODENAME=forky, docs/publishing.md) wait under staged/forky, are
// found by ForBoot on a booted forky without VERSION_ID, and Prune keeps
// them for it and drops the builds for trixie.
func TestForBootWithoutVersionID(t *testing.T) {
	root := rootfs.New(t.TempDir())
	forky := osrelease.OS{ID: "debian", VersionCodename: "forky"}
	trixie := osrelease.OS{ID: "debian", VersionID: "13", VersionCodename: "trixie"}
	good := build(t, root, forky, "sysext-hello", "14", "forky")
	if want := root.Path(StagedRoot + "/forky/sysext-hello.raw"); good != want {
		t.Fatalf("the forky build is at %s, want %s", good, want)
	}
	old := build(t, root, trixie, "sysext-hello", "13", "trixie")

	booted := &facts.Facts{Arch: facts.HostArch(), OS: forky}
	got, err := ForBoot(root, booted)
	if err != nil || !slices.Equal(got, []string{good}) {
		t.Errorf("ForBoot on forky = %q, %v; want %q", got, err, good)
	}
	if got, err := ForBoot(root, &facts.Facts{Arch: facts.HostArch(), OS: osrelease.OS{ID: "debian", VersionCodename: "sid"}}); got != nil || err != nil {
		t.Errorf("ForBoot on sid = %q, %v; want nothing (the forky builds are not for it)", got, err)
	}
	if got, err := ForBoot(root, &facts.Facts{Arch: facts.HostArch(), OS: osrelease.OS{ID: "debian"}}); got != nil || err == nil {
		t.Errorf("ForBoot on an OS with neither VERSION_ID nor VERSION_CODENAME = %q, %v; want an error", got, err)
	}

	removed, err := Prune(root, forky)
	if err != nil || !slices.Equal(removed, []string{StagedRoot + "/13"}) {
		t.Errorf("Prune(forky) = %q, %v; want the trixie builds removed", removed, err)
	}
	if _, err := os.Stat(good); err != nil {
		t.Errorf("Prune removed the forky build: %v", err)
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("the trixie build is still there")
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
