package cli

import (
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/putserver"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// TestInstallLocalImage: sysextctl install ./sysext-hello.raw gets the
// same validation and activation as a release, the state says local, and
// update leaves it alone when no manifest names it.
func TestInstallLocalImage(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		x := release.Ext{Package: "hello", Version: "1.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/share/sysextd-test/local": "local"}}}
		dir := t.TempDir()
		img := sqfs.Build(t, dir, sqfs.Spec{Name: "sysext-hello", Files: x.Spec.Files, Release: x.Fields()})
		local := filepath.Join(dir, "sysext-hello.raw")
		if err := os.Rename(img, local); err != nil {
			t.Fatal(err)
		}

		// A wrong image is refused like any release: an image for another OS.
		bad := release.Ext{Package: "other", Version: "1.0-1", Release: map[string]string{"ID": "fedora"}}
		badImg := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "sysext-other", Release: bad.Fields()})
		badPath := filepath.Join(dir, "sysext-other.raw")
		if err := os.Rename(badImg, badPath); err != nil {
			t.Fatal(err)
		}
		if _, _, code := f.run("install", badPath); code == 0 {
			t.Fatal("install of an image for another OS: exit 0, want a refusal")
		}
		if f.exists("/var/lib/extensions/sysext-other.raw") {
			t.Fatal("the refused image was placed")
		}

		f.mustRun("install", local)
		if !f.exists("/var/lib/extensions/sysext-hello.raw") || !f.exists("/usr/share/sysextd-test/local") {
			t.Fatal("after install: image or its marker missing")
		}
		st, err := store.Store{Root: f.root}.LoadState()
		if err != nil {
			t.Fatal(err)
		}
		if r := st.Extensions["hello"]; r == nil || r.Tag != "local" || r.Version != "1.0-1" {
			t.Fatalf("state record = %+v, want tag local, version 1.0-1", r)
		}
		if st := f.gh.Stats(); st.API != 0 || st.Downloads != 0 {
			t.Errorf("local install used the network: %+v", st)
		}
		out := f.mustRun("update")
		if !strings.Contains(out, "no manifest entry") {
			t.Errorf("update output %q, want it to leave the local image alone", out)
		}
		if !f.exists("/usr/share/sysextd-test/local") {
			t.Error("update changed the local image")
		}
	})
}

// TestMirrorFallback: sysextctl mirror fills a file:// mirror from
// GitHub; with GitHub unreachable, install and update come from the
// mirror, digests checked.
func TestMirrorFallback(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest)
		mirror := t.TempDir()
		published := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		v1 := release.Ext{Package: "hello", Version: "1.0-1", PublishedAt: published, Spec: sqfs.Spec{Files: map[string]string{"usr/share/sysextd-test/v1": "v1"}}}
		f.publish(v1)
		out := f.mustRun("mirror", "--to", "file://"+mirror)
		if !strings.Contains(out, "mirrored hello 1.0-1") {
			t.Fatalf("mirror output %q", out)
		}
		b, err := os.ReadFile(filepath.Join(mirror, "sysext-hello", "index.json"))
		if err != nil {
			t.Fatalf("mirror has no index: %v", err)
		}
		// The mirror keeps GitHub's publish time, not the time of copying,
		// so that it orders releases as GitHub did.
		ix, err := source.ParseIndex(b, "sysext-hello")
		if err != nil || len(ix.Releases) != 1 || !ix.Releases[0].PublishedAt.Equal(published) {
			t.Fatalf("mirror index %s (%v): want one release published at %v", b, err, published)
		}
		f.write(rootfs.DaemonConfig, "mirrors = [\"file://"+mirror+"\"]\n")

		// GitHub now answers nothing but errors.
		f.gh.Close()
		f.mustRun("install", "hello")
		if !f.exists("/usr/share/sysextd-test/v1") {
			t.Fatal("install from the mirror: v1 marker missing")
		}
		if it := f.list("--refresh")["hello"]; it.Source != "file://"+mirror || it.AvailableVersion != "1.0-1" {
			t.Errorf("list with GitHub down: source %q available %q, want the mirror's 1.0-1", it.Source, it.AvailableVersion)
		}

		// A tampered mirror is refused by its index's digest.
		p := filepath.Join(mirror, "sysext-hello", "v1.0-1")
		ents, err := os.ReadDir(p)
		if err != nil {
			t.Fatal(err)
		}
		f.mustRun("remove", "hello")
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".squashfs") {
				b, err := os.ReadFile(filepath.Join(p, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0xff
				if err := os.WriteFile(filepath.Join(p, e.Name()), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, stderr, code := f.run("install", "hello"); code == 0 || !strings.Contains(stderr, "digest mismatch") {
			t.Errorf("install from a tampered mirror: exit %d, stderr %q; want a digest mismatch", code, stderr)
		}
		if f.exists("/var/lib/extensions/sysext-hello.raw") {
			t.Error("the tampered image was placed")
		}
	})
}

// TestUploadMirrorFallback: sysextctl mirror uploads by PUT to a web
// server (token auth, as nginx with dav_methods PUT and limit_except GET);
// with GitHub unreachable, install comes from that server as a mirror.
func TestUploadMirrorFallback(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		srv := putserver.New(t, t.TempDir())
		srv.RequireToken("tok-123")
		to := srv.URL + "/m"

		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest)
		v1 := release.Ext{Package: "hello", Version: "1.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/share/sysextd-test/v1": "v1"}}}
		f.publish(v1)

		// Nobody listening: the network exit code.
		dead := httptest.NewServer(nil)
		dead.Close()
		if _, stderr, code := f.run("mirror", "--to", dead.URL+"/m"); code != ExitNetwork {
			t.Errorf("upload server down: exit %d, stderr %q; want %d", code, stderr, ExitNetwork)
		}
		// A wrong token: refused with a hint, exit 1, nothing written.
		t.Setenv("SYSEXTD_MIRROR_TOKEN", "wrong")
		if _, stderr, code := f.run("mirror", "--to", to); code != ExitFailure || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "SYSEXTD_MIRROR_TOKEN") {
			t.Errorf("wrong token: exit %d, stderr %q; want exit 1 naming the 401 and the token", code, stderr)
		}
		if len(srv.Puts()) != 0 {
			t.Fatalf("PUTs with a wrong token: %q", srv.Puts())
		}

		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte("tok-123\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := f.mustRun("mirror", "--to", to, "--token-file", tokenFile)
		if !strings.Contains(out, "mirrored hello 1.0-1 (v1.0-1) into "+to) {
			t.Fatalf("mirror output %q", out)
		}
		puts := srv.Puts()
		if len(puts) < 3 || puts[len(puts)-1] != "/m/sysext-hello/index.json" {
			t.Fatalf("PUTs %q, want the assets then the index last", puts)
		}
		// Again: the assets are there, only the index is put.
		t.Setenv("SYSEXTD_MIRROR_TOKEN", "tok-123")
		f.mustRun("mirror", "--to", to)
		if again := srv.Puts()[len(puts):]; len(again) != 1 || again[0] != "/m/sysext-hello/index.json" {
			t.Errorf("second mirror run PUT %q, want only the index", again)
		}

		f.write(rootfs.DaemonConfig, "mirrors = [\""+to+"\"]\n")
		f.gh.Close()
		f.mustRun("install", "hello")
		if !f.exists("/usr/share/sysextd-test/v1") {
			t.Fatal("install from the uploaded mirror: v1 marker missing")
		}
		if it := f.list("--refresh")["hello"]; it.Source != to || it.AvailableVersion != "1.0-1" {
			t.Errorf("list with GitHub down: source %q available %q, want the uploaded mirror's 1.0-1", it.Source, it.AvailableVersion)
		}

		// The mirror now serves only with a login: refused, with the
		// file to put one in, and nothing changes; with the login in
		// auth.conf, install works again.
		f.mustRun("remove", "hello")
		srv.RequireReadLogin("fleet", "s3cret-9")
		_, stderr, code := f.run("install", "hello")
		if code == 0 || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "/etc/sysextd/auth.conf") {
			t.Fatalf("private mirror without a login: exit %d, stderr %q; want a 401 naming auth.conf", code, stderr)
		}
		if f.exists("/var/lib/extensions/sysext-hello.raw") {
			t.Fatal("installed without a login")
		}
		host := strings.TrimPrefix(srv.URL, "http://")
		// A broken auth.conf is a usage error naming its line.
		f.write(rootfs.AuthConfig, "\nmachine http://"+host+"/m login fleet password\n")
		if _, stderr, code := f.run("install", "hello"); code != ExitUsage || !strings.Contains(stderr, "auth.conf:2: \"password\" needs a value") {
			t.Errorf("broken auth.conf: exit %d, stderr %q; want %d naming line 2", code, stderr, ExitUsage)
		}
		f.write(rootfs.AuthConfig, "# fleet mirror\nmachine http://"+host+"/m login fleet password s3cret-9\n")
		if err := os.Chmod(f.root.Path(rootfs.AuthConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, code = f.run("install", "hello")
		if code != 0 || !f.exists("/usr/share/sysextd-test/v1") || strings.Contains(out+stderr, "s3cret-9") {
			t.Fatalf("install with the login from auth.conf: exit %d, v1 missing or password shown (stdout %q, stderr %q)", code, out, stderr)
		}
		if strings.Contains(stderr, "readable by others") {
			t.Errorf("warned about a 0600 auth.conf: %q", stderr)
		}

		// mirror --to takes its login from auth.conf too, so that no
		// password is on the command line: from the private mirror (GitHub
		// is still down) to another server, both logins in one file.
		up := putserver.New(t, t.TempDir())
		up.RequireBasic("ci", "up-pa55")
		f.write(rootfs.AuthConfig, "machine http://"+host+"/m login fleet password s3cret-9\n"+
			"machine http://"+strings.TrimPrefix(up.URL, "http://")+" login ci password up-pa55\n")
		if err := os.Chmod(f.root.Path(rootfs.AuthConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SYSEXTD_MIRROR_TOKEN", "")
		out, stderr, code = f.run("mirror", "--to", up.URL+"/m")
		if code != 0 || !strings.Contains(out, "mirrored hello 1.0-1") || strings.Contains(out+stderr, "up-pa55") {
			t.Errorf("mirror --to with the login from auth.conf: exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		if puts := up.Puts(); len(puts) == 0 || puts[len(puts)-1] != "/m/sysext-hello/index.json" {
			t.Errorf("PUTs %q, want the index last", puts)
		}
	})
}

// TestOCIMirrorFallback: sysextctl mirror pushes to an OCI registry (the
// in-process registry of go-containerregistry); with GitHub unreachable,
// install and update come from it, digests checked.
func TestOCIMirrorFallback(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(reg.Close)
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		oci := "oci://" + strings.TrimPrefix(reg.URL, "http://") + "/spamtagger"

		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest)
		v1 := release.Ext{Package: "hello", Version: "1.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/share/sysextd-test/v1": "v1"}}}
		f.publish(v1)
		f.mustRun("mirror", "--to", oci)
		f.write(rootfs.DaemonConfig, "mirrors = [\""+oci+"\"]\n")
		ghURL := f.gh.URL()
		f.gh.Close()

		f.mustRun("install", "hello")
		if !f.exists("/usr/share/sysextd-test/v1") {
			t.Fatal("install from the registry: v1 marker missing")
		}

		// A new release reaches the registry through another GitHub; the
		// appliance, GitHub still down, updates from the registry.
		gh2 := fakegithub.New()
		t.Cleanup(gh2.Close)
		v2 := release.Ext{Package: "hello", Version: "2.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/share/sysextd-test/v2": "v2"}}}
		release.Publish(t, gh2, v2)
		f.gh = gh2
		f.mustRun("mirror", "--to", oci, "hello")
		f.gh = nil
		var out, errb bytes.Buffer
		code := Run(t.Context(), []string{"--root", f.root.Dir(), "--github-api", ghURL, "update"}, &out, &errb)
		if code != 0 || !f.exists("/usr/share/sysextd-test/v2") {
			t.Fatalf("update from the registry: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
		}
	})
}
