package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/distribution"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// orasPush builds a real image of hello at version and pushes it with its
// .manifest to reg's sysext-hello with oras's defaults, as a fleet's CI
// following docs/sources.md does.
func orasPush(t *testing.T, reg *distribution.Registry, version string, tags ...string) {
	t.Helper()
	x := release.Ext{Package: "hello", Version: version, Spec: sqfs.Spec{Files: map[string]string{"usr/share/sysextd-test/" + version: version}}}
	fields := x.Fields()
	dir := t.TempDir()
	base := "sysext-hello_trixie_" + fields["ARCH"]
	img := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "sysext-hello", Files: x.Spec.Files, Release: fields})
	if err := os.Rename(img, filepath.Join(dir, base+".squashfs")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, base+".manifest"), []byte(sqfs.FormatRelease(fields)), 0o644); err != nil {
		t.Fatal(err)
	}
	reg.Oras(t, dir, "push", reg.Host+"/sysext-hello:"+strings.Join(tags, ","), base+".squashfs", base+".manifest")
}

// TestRegistryLoginInstallPin: a registry that needs a login, filled by
// oras, serves sysextctl with the login in /etc/sysextd/auth.json and no
// HOME: install oci:// of one tag, update to the newest release whatever
// the moving tag says, pin back to a per-release tag.
func TestRegistryLoginInstallPin(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		reg := distribution.Start(t, true)
		arch := release.HostArch()
		orasPush(t, reg, "2.0-1", "v2.0-1_trixie_"+arch, "trixie_"+arch)
		// The older release pushed last moves trixie_ARCH back by hand.
		orasPush(t, reg, "1.0-1", "v1.0-1_trixie_"+arch, "trixie_"+arch)
		for _, k := range []string{"HOME", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "CREDENTIALS_DIRECTORY"} {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
		f := newFixture(t, nsroot.NewRoot(t))
		repo := "oci://" + reg.Host + "/sysext-hello"

		// No login: refused, naming the registry and where logins are read.
		_, stderr, code := f.run("install", repo+":v1.0-1_trixie_"+arch)
		authJSON := f.root.Path(rootfs.RegistryAuth)
		if code == 0 || !strings.Contains(stderr, "registry "+reg.Host+" refused access (401 Unauthorized)") ||
			!strings.Contains(stderr, authJSON) || strings.Contains(stderr, "GitHub") || strings.Contains(stderr, "map[") {
			t.Fatalf("install without a login: exit %d, stderr %q", code, stderr)
		}

		reg.AuthJSON(t, authJSON)
		if err := os.Chmod(authJSON, 0o600); err != nil {
			t.Fatal(err)
		}
		f.mustRun("install", repo+":v1.0-1_trixie_"+arch)
		if !f.exists("/usr/share/sysextd-test/1.0-1") {
			t.Fatal("install oci://...:v1.0-1: its marker is missing")
		}

		// The manifest names the repository: the newest release by
		// version, 2.0-1, not what trixie_ARCH names (1.0-1).
		f.write(rootfs.LocalManifest, "[hello]\nurl = \""+repo+"\"\n")
		f.mustRun("update")
		if !f.exists("/usr/share/sysextd-test/2.0-1") {
			t.Fatal("update: 2.0-1 not installed")
		}
		f.mustRun("pin", "hello", "1.0-1")
		if !f.exists("/usr/share/sysextd-test/1.0-1") || f.exists("/usr/share/sysextd-test/2.0-1") {
			t.Fatal("pin hello 1.0-1: not back on 1.0-1")
		}
		st, err := store.Store{Root: f.root}.LoadState()
		if err != nil {
			t.Fatal(err)
		}
		if r := st.Extensions["hello"]; r == nil || r.Version != "1.0-1" || r.Pin != "1.0-1" {
			t.Errorf("state after pin: %+v", r)
		}
	})
}
