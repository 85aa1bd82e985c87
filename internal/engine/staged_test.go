package engine

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
	"github.com/spamtagger/sysextd/internal/upgrade"
)

// TestStagedOSUpgrade: with a forky deployment staged, the forky build of
// each installed extension is fetched and verified ahead of time without
// touching what is installed; after the reboot into forky, with the
// network gone, it replaces the trixie build through the transaction. Both
// for forky while it is testing (no VERSION_ID: staged/forky) and once it
// is Debian 14 (staged/14).
func TestStagedOSUpgrade(t *testing.T) {
	for _, tt := range []struct {
		name string
		os   osrelease.OS
		dir  string
	}{
		{"testing", osrelease.OS{ID: "debian", VersionCodename: "forky"}, "/var/lib/sysextd/staged/forky/"},
		{"released", osrelease.OS{ID: "debian", VersionID: "14", VersionCodename: "forky"}, "/var/lib/sysextd/staged/14/"},
	} {
		t.Run(tt.name, func(t *testing.T) { stagedOSUpgrade(t, tt.os, tt.dir) })
	}
}

func stagedOSUpgrade(t *testing.T, target osrelease.OS, dir string) {
	b := newBench(t)
	b.publish("alpha", "1", "alpha.service")
	if r := b.apply(VerbInstall, "alpha"); !r.OK {
		t.Fatal(r.Error)
	}
	// The forky build, published for the forky target only.
	fields := sqfs.DefaultRelease("sysext-alpha")
	fields["PACKAGE_VERSION"], fields["VERSION_ID"], fields["VERSION_CODENAME"] = "1+forky", "14", "forky"
	asset := "sysext-alpha_forky.squashfs"
	b.src.files[asset] = sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "sysext-alpha", Release: fields,
		Files: map[string]string{"usr/share/alpha/version": "1+forky"}})
	b.src.releases["alpha@forky"] = &source.Release{Name: "alpha", Tag: "t1f", Version: "1+forky", BuildTime: fields["BUILD_TIME"],
		Fields: fields, Image: source.Asset{Name: asset}}

	s := &upgrade.StagedOS{OS: target}
	rs := b.e.PrefetchStaged(context.Background(), s)
	if len(rs) != 1 || !rs[0].OK {
		t.Fatalf("prefetch = %+v", rs)
	}
	staged, _ := upgrade.StagedImage(s.OS, "sysext-alpha")
	if staged != dir+"sysext-alpha.raw" {
		t.Errorf("staged at %s, want under %s", staged, dir)
	}
	if _, err := os.Stat(b.e.Root.Path(staged)); err != nil {
		t.Fatalf("no staged build: %v", err)
	}
	if got := b.installed()["alpha"]; got != "1" {
		t.Fatalf("prefetch changed the installed version to %s", got)
	}
	// Again: nothing new to fetch.
	mark := len(b.rec.calls)
	if rs := b.e.PrefetchStaged(context.Background(), s); !rs[0].OK || len(b.calls(mark, "^download")) != 0 {
		t.Fatalf("second prefetch = %+v, calls %v", rs, b.rec.calls[mark:])
	}

	// Reboot into forky with no network.
	b.e.Facts.OS = target
	b.src.fail["download "+asset] = errors.New("network is unreachable")
	mark = len(b.rec.calls)
	rs = b.e.ActivateStaged(context.Background())
	if len(rs) != 1 || !rs[0].OK || rs[0].To != "1+forky" {
		t.Fatalf("activate staged = %+v", rs)
	}
	if got := b.calls(mark, "^download"); len(got) != 0 {
		t.Errorf("activation downloaded: %v", got)
	}
	if got := b.installed()["alpha"]; got != "1+forky" {
		t.Fatalf("after the first forky boot alpha = %s", got)
	}
	if _, err := os.Stat(b.e.Root.Path(staged)); !os.IsNotExist(err) {
		t.Errorf("the consumed staged build is still there: %v", err)
	}
	st, _ := store.Store{Root: b.e.Root}.LoadState()
	if st.Extensions["alpha"].Hold {
		t.Error("a staged activation held the extension")
	}
	// Nothing staged: nothing happens.
	if rs := b.e.ActivateStaged(context.Background()); len(rs) != 0 {
		t.Errorf("second activation = %+v", rs)
	}
}
