package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/debpkg"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

const helloManifest = `[hello]
url = "https://github.com/SpamTagger/sysext-hello"
`

// helloExt is Debian's real hello package as an extension, plus a marker
// file that tells releases apart.
func helloExt(t *testing.T, version, marker string) release.Ext {
	t.Helper()
	files, debVersion := debpkg.Files(t, "hello")
	if version == "" {
		version = debVersion
	}
	files["usr/share/sysextd-test/"+marker] = marker
	return release.Ext{Package: "hello", Version: version, Spec: sqfs.Spec{Files: files},
		PublishedAt: time.Now().Add(time.Duration(len(marker)) * time.Second)}
}

func TestInstallUpdateRemoveHello(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest)
		v1 := helloExt(t, "", "v1")
		f.publish(v1)

		f.mustRun("install", "hello")
		if !f.exists("/var/lib/extensions/sysext-hello.raw") || !f.exists("/usr/bin/hello") || !f.exists("/usr/share/sysextd-test/v1") {
			t.Fatal("after install: sysext-hello.raw, /usr/bin/hello or the v1 marker missing")
		}
		it := f.list()["hello"]
		if it.Status != "active" || it.InstalledVersion != v1.Version || it.AvailableVersion != v1.Version {
			t.Fatalf("list after install = %+v, want active %s", it, v1.Version)
		}
		st, _ := store.Store{Root: f.root}.LoadState()
		if r := st.Extensions["hello"]; r == nil || r.InstalledBy != store.ByManual || !strings.HasPrefix(r.Digest, "sha256:") {
			t.Fatalf("state record = %+v", r)
		}
		if entries, _ := os.ReadDir(f.root.Path(rootfs.ExtensionsDir)); len(entries) != 1 {
			t.Errorf("extension dir holds %d entries, want only the image", len(entries))
		}

		v2 := helloExt(t, v1.Version+"+sysext1", "v2-longer")
		f.publish(v2)
		out := f.mustRun("update")
		if !strings.Contains(out, "updated") {
			t.Errorf("update output %q does not say updated", out)
		}
		if !f.exists("/usr/share/sysextd-test/v2-longer") || f.exists("/usr/share/sysextd-test/v1") {
			t.Fatal("after update: v2 marker missing or v1 marker still merged")
		}
		if it := f.list()["hello"]; it.Status != "active" || it.InstalledVersion != v2.Version {
			t.Fatalf("list after update = %+v", it)
		}
		if out := f.mustRun("update"); !strings.Contains(out, "up to date") {
			t.Errorf("second update output %q, want up to date", out)
		}

		f.mustRun("remove", "hello")
		if f.exists("/usr/bin/hello") || f.exists("/var/lib/extensions/sysext-hello.raw") {
			t.Fatal("after remove: hello still there")
		}
		if it := f.list()["hello"]; it.Status != "not-installed" {
			t.Fatalf("list after remove = %+v", it)
		}
		// Every change is in the history, in order; "up to date" is not.
		out = f.mustRun("history", "--json", "hello")
		var hist []store.HistoryEntry
		if err := json.Unmarshal([]byte(out), &hist); err != nil {
			t.Fatalf("history --json: %v\n%s", err, out)
		}
		var got []string
		for _, h := range hist {
			got = append(got, h.Op+" "+h.From+">"+h.To+" "+h.Result+" "+h.By)
		}
		want := []string{"install >" + v1.Version + " ok cli", "update " + v1.Version + ">" + v2.Version + " ok cli", "remove " + v2.Version + "> ok cli"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("history = %q, want %q", got, want)
		}
	})
}

// TestBrokenReleasesKeepPrevious: a newer release that is corrupt,
// misnamed, or for another OS version is refused and v1 stays merged.
func TestBrokenReleasesKeepPrevious(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest)
		v1 := helloExt(t, "", "v1")
		f.publish(v1)
		f.mustRun("install", "hello")

		tests := []struct {
			name    string
			mutate  func(x *release.Ext)
			wantErr string
		}{
			{"wrong digest", func(x *release.Ext) { x.Corrupt = true }, "digest"},
			{"wrong extension-release name", func(x *release.Ext) { x.Spec.Name = "sysext-other" }, "sysext-other"},
			{"other VERSION_ID", func(x *release.Ext) { x.Release = map[string]string{"VERSION_ID": "12"} }, "VERSION_ID"},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				x := helloExt(t, v1.Version+"+bad"+string(rune('a'+i)), strings.Repeat("x", 10+i))
				tt.mutate(&x)
				f.publish(x)
				_, stderr, code := f.run("update", "hello")
				if code != ExitFailure {
					t.Errorf("exit = %d, want %d", code, ExitFailure)
				}
				if !strings.Contains(stderr, tt.wantErr) {
					t.Errorf("stderr %q does not mention %q", stderr, tt.wantErr)
				}
				if !f.exists("/usr/share/sysextd-test/v1") || !f.exists("/usr/bin/hello") {
					t.Fatal("v1 is no longer merged")
				}
				if it := f.list("--offline")["hello"]; it.Status != "active" || it.InstalledVersion != v1.Version {
					t.Fatalf("list = %+v, want v1 active", it)
				}
				staged, _ := filepath.Glob(f.root.Path(rootfs.StateDir + "/staging/*"))
				if len(staged) != 0 {
					t.Errorf("staging left %v", staged)
				}
			})
		}
	})
}

// TestRefreshFailureRollsBack: an unreadable image another tool dropped
// into /etc/extensions makes every refresh fail; the install must undo
// itself and leave what was merged merged.
func TestRefreshFailureRollsBack(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest+`
[tool]
url = "https://github.com/SpamTagger/sysext-tool"
`)
		f.publish(helloExt(t, "", "v1"))
		f.publish(release.Ext{Package: "tool", Version: "1.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/bin/tool": "#!/bin/sh\n"}}})
		f.mustRun("install", "hello")
		f.write(rootfs.EtcExtensionsDir+"/junk.raw", "not an image")
		_, stderr, code := f.run("install", "tool")
		if code != ExitFailure || !strings.Contains(stderr, "rolled back") {
			t.Fatalf("exit %d, stderr %q; want a rolled back failure", code, stderr)
		}
		if f.exists("/var/lib/extensions/sysext-tool.raw") || f.exists("/usr/bin/tool") {
			t.Error("tool left in the store or merged after rollback")
		}
		if !f.exists("/usr/bin/hello") {
			t.Error("hello no longer merged after the failed install")
		}
	})
}

func TestConflictAndAuto(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, `[open-vm-tools]
url = "https://github.com/SpamTagger/sysext-open-vm-tools"
virt_env = ["vmware"]
conflicts = ["qemu-guest-agent"]

[qemu-guest-agent]
url = "https://github.com/SpamTagger/sysext-qemu-guest-agent"
virt_env = ["kvm"]

[hello]
url = "https://github.com/SpamTagger/sysext-hello"
`)
		for _, p := range []string{"open-vm-tools", "qemu-guest-agent", "hello"} {
			f.publish(release.Ext{Package: p, Version: "1.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/share/" + p + "/marker": p}}})
		}
		factsFile := filepath.Join(t.TempDir(), "facts.json")
		os.WriteFile(factsFile, []byte(`{"arch":"`+release.HostArch()+`","os":{"id":"debian","version_id":"13","version_codename":"trixie"},"virtualization":"kvm"}`), 0o644)

		out := f.mustRun("--facts", factsFile, "auto", "--dry-run")
		if !strings.Contains(out, "would install qemu-guest-agent") || strings.Contains(out, "hello") {
			t.Errorf("auto --dry-run = %q, want qemu-guest-agent only", out)
		}
		if f.exists("/var/lib/extensions/sysext-qemu-guest-agent.raw") {
			t.Fatal("--dry-run installed something")
		}
		f.mustRun("--facts", factsFile, "auto")
		if !f.exists("/usr/share/qemu-guest-agent/marker") {
			t.Fatal("auto did not install the recommended qemu-guest-agent")
		}
		st, _ := store.Store{Root: f.root}.LoadState()
		if r := st.Extensions["qemu-guest-agent"]; r == nil || r.InstalledBy != store.ByAuto {
			t.Fatalf("record = %+v, want installed_by auto", r)
		}

		out = f.mustRun("--facts", factsFile, "install", "open-vm-tools", "--dry-run")
		if !strings.Contains(out, "would remove qemu-guest-agent (conflicts with open-vm-tools)") {
			t.Errorf("install --dry-run = %q, want the conflict shown", out)
		}
		out = f.mustRun("--facts", factsFile, "install", "open-vm-tools")
		if !strings.Contains(out, "removed conflicting qemu-guest-agent") {
			t.Errorf("install output %q does not say it removed the conflict", out)
		}
		if !f.exists("/usr/share/open-vm-tools/marker") || f.exists("/usr/share/qemu-guest-agent/marker") || f.exists("/var/lib/extensions/sysext-qemu-guest-agent.raw") {
			t.Fatal("after installing open-vm-tools: qemu-guest-agent still there or open-vm-tools missing")
		}
		// auto keeps the installed one rather than flipping back.
		out, stderr, code := f.run("--facts", factsFile, "auto")
		if code != 0 || f.exists("/usr/share/qemu-guest-agent/marker") || !strings.Contains(stderr, "keeping open-vm-tools") {
			t.Errorf("auto after manual choice: exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
}

func TestAdoptSysextPlLeftovers(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest)
		x := helloExt(t, "", "v1")
		img := f.publish(x)
		// sysext.pl saved KEY.raw and KEY.manifest.
		data, _ := os.ReadFile(img)
		f.write("/var/lib/extensions/hello.raw", string(data))
		f.write("/var/lib/extensions/hello.manifest", sqfs.FormatRelease(x.Fields()))
		_, stderr, code := f.run("update")
		if code != 0 || !strings.Contains(stderr, "adopted") {
			t.Fatalf("update: exit %d, stderr %q", code, stderr)
		}
		if f.exists("/var/lib/extensions/hello.raw") || f.exists("/var/lib/extensions/hello.manifest") || !f.exists("/var/lib/extensions/sysext-hello.raw") {
			t.Fatal("leftovers not renamed")
		}
		if it := f.list("--offline")["hello"]; it.Status != "active" || it.InstalledVersion != x.Version {
			t.Fatalf("list = %+v, want adopted hello active", it)
		}
	})
}

// TestLeftoverBesideInstalledImageIsQuarantined: sysext.pl's hello.raw next
// to an installed sysext-hello.raw would make systemd refuse every refresh;
// it is moved to the quarantine (kept, not deleted), said so, and the
// install of another extension goes through.
func TestLeftoverBesideInstalledImageIsQuarantined(t *testing.T) {
	nsroot.Run(t, func(t *testing.T) {
		f := newFixture(t, nsroot.NewRoot(t))
		f.write(rootfs.VendorManifest, helloManifest+`
[tool]
url = "https://github.com/SpamTagger/sysext-tool"
`)
		img := f.publish(helloExt(t, "", "v1"))
		f.publish(release.Ext{Package: "tool", Version: "1.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/bin/tool": "#!/bin/sh\n"}}})
		f.mustRun("install", "hello")
		data, _ := os.ReadFile(img)
		f.write("/var/lib/extensions/hello.raw", string(data))
		_, stderr, code := f.run("install", "tool")
		if code != 0 || !strings.Contains(stderr, "moved sysext.pl leftover /var/lib/extensions/hello.raw") {
			t.Fatalf("install tool: exit %d, stderr %q", code, stderr)
		}
		if f.exists("/var/lib/extensions/hello.raw") || !f.exists("/var/lib/sysextd/quarantine/hello.raw") {
			t.Error("the leftover was not moved to the quarantine")
		}
		if !f.exists("/usr/bin/tool") || !f.exists("/usr/bin/hello") {
			t.Error("tool or hello not merged")
		}
	})
}
