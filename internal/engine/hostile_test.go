package engine

import (
	"bytes"

	"aead.dev/minisign"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// hostileImage describes an image an attacker controls: its
// extension-release fields beyond the defaults, its files, and a hook on
// the tree before packing (symlinks, modes) or on the packed bytes
// (names no mksquashfs writes).
type hostileImage struct {
	fields map[string]string
	files  map[string]string
	tree   func(t *testing.T, dir string)
	patch  func(t *testing.T, img []byte) []byte
}

// publishHostile publishes name at version built from h. Images that are
// patched are packed uncompressed, so that a name can be rewritten in
// place.
func (b *bench) publishHostile(name, version string, h hostileImage) {
	t := b.t.(*testing.T)
	t.Helper()
	img := "sysext-" + name
	fields := sqfs.DefaultRelease(img)
	fields["PACKAGE_VERSION"] = version
	for k, v := range h.fields {
		fields[k] = v
	}
	files := map[string]string{"usr/share/" + name + "/version": version}
	for p, c := range h.files {
		files[p] = c
	}
	dir := t.TempDir()
	if err := sqfs.WriteTree(dir, sqfs.Spec{Name: img, Release: fields, Files: files}); err != nil {
		t.Fatal(err)
	}
	if h.tree != nil {
		h.tree(t, dir)
	}
	out := filepath.Join(t.TempDir(), img+"_"+version+".squashfs")
	args := []string{dir, out, "-all-root", "-noappend", "-no-progress", "-quiet", "-mkfs-time", "0", "-all-time", "0"}
	if h.patch != nil {
		args = append(args, "-noI", "-noD", "-noF", "-noX")
	}
	if o, err := exec.Command("mksquashfs", args...).CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, o)
	}
	if h.patch != nil {
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, h.patch(t, data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	asset := filepath.Base(out)
	b.src.files[asset] = out
	b.src.releases[name] = &source.Release{Name: name, Tag: "t" + version, Version: version, BuildTime: fields["BUILD_TIME"],
		Fields: fields, Image: source.Asset{Name: asset}}
}

// replaceName rewrites a directory entry name in an uncompressed image;
// from and to have the same length.
func replaceName(from, to string) func(*testing.T, []byte) []byte {
	return func(t *testing.T, img []byte) []byte {
		t.Helper()
		if len(from) != len(to) {
			t.Fatalf("replaceName: %q and %q differ in length", from, to)
		}
		if bytes.Count(img, []byte(from)) != 1 {
			t.Fatalf("replaceName: %q occurs %d times in the image", from, bytes.Count(img, []byte(from)))
		}
		return bytes.Replace(img, []byte(from), []byte(to), 1)
	}
}

const unitWithInstall = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"

// TestHostileInputs is the trust boundary's table (docs/trust.md,
// docs/RELIABILITY.md "Hostile inputs"): each row is an attack from a
// mirror, a compromised build or a local account. Each must be refused
// with a message naming what was refused, or have no effect; the host
// keeps its previous extension, and no unit outside the image is touched.
func TestHostileInputs(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skipf("SKIPPING: mksquashfs not found: %v", err)
	}
	type row struct {
		name string
		// setup runs on a bench where beta 1 is installed (no update
		// action in its manifest entry); it publishes beta 2.
		setup func(t *testing.T, b *bench)
		// wantErr is a text the refusal must contain; "" means the update
		// must succeed but the attack have no effect (check says how).
		wantErr string
		check   func(t *testing.T, b *bench, mark int)
		// outside is a host path that must not exist afterwards.
		outside string
	}
	outsideDir := t.TempDir()
	rows := []row{
		{name: "unsigned .manifest appends UPDATE= naming ssh and poweroff",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{})
				b.src.releases["beta"].Fields["UPDATE"] = "service: ssh.service, poweroff.target"
			},
			check: func(t *testing.T, b *bench, mark int) {
				if got := b.calls(mark, "^restart "); len(got) != 0 {
					t.Errorf("units restarted from an unverified .manifest: %v", got)
				}
				if got := b.installed()["beta"]; got != "2" {
					t.Errorf("beta = %s, want 2", got)
				}
			}},
		{name: "image UPDATE= names a service the image does not ship",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{fields: map[string]string{"UPDATE": "service: ssh.service"}})
			},
			wantErr: "names ssh.service, which the image does not ship"},
		{name: "image UPDATE= names a target",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{fields: map[string]string{"UPDATE": "service: poweroff.target"},
					files: map[string]string{"usr/lib/systemd/system/poweroff.target": "[Unit]\n"}})
			},
			wantErr: "poweroff.target is not a .service unit"},
		{name: "image EXTENSION_RESTART_UNITS= names a target",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{fields: map[string]string{"EXTENSION_RESTART_UNITS": "poweroff.target"},
					files: map[string]string{"usr/lib/systemd/system/poweroff.target": "[Unit]\n"}})
			},
			wantErr: "names poweroff.target: only services are restarted"},
		{name: "image EXTENSION_RELOAD_OR_RESTART_UNITS= names a foreign service",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{fields: map[string]string{"EXTENSION_RELOAD_OR_RESTART_UNITS": "ssh.service"}})
			},
			wantErr: "names ssh.service, which the image does not ship"},
		{name: "payload entry named ../root/.ssh/authorized_keys_sysext",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{
					files: map[string]string{"etc/XXXroot_.ssh_authorized_keys_sysext": "ssh-ed25519 AAAA attacker\n"},
					patch: replaceName("XXXroot_.ssh_authorized_keys_sysext", "../root/.ssh/authorized_keys_sysext")})
			},
			wantErr: "invalid entry name", outside: "/root/.ssh/authorized_keys_sysext"},
		{name: "payload entry named ..",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/zz": "x\n"}, patch: replaceName("zz", "..")})
			},
			wantErr: "invalid entry name"},
		{name: "payload grants sudo",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/sudoers.d/beta": "ALL ALL=(ALL) NOPASSWD: ALL\n"}})
			},
			wantErr: "/etc/sudoers.d/beta: grants root", outside: "/etc/sudoers.d/beta"},
		{name: "payload preloads a library",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/ld.so.preload": "/usr/lib/evil.so\n"}})
			},
			wantErr: "/etc/ld.so.preload", outside: "/etc/ld.so.preload"},
		{name: "payload overrides a base unit",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/systemd/system/ssh.service.d/override.conf": "[Service]\nExecStart=\nExecStart=/bin/sh\n"}})
			},
			wantErr: "/etc/systemd/system/ssh.service.d/override.conf", outside: "/etc/systemd/system/ssh.service.d/override.conf"},
		{name: "payload adds a root crontab",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"var/spool/cron/crontabs/root": "* * * * * /bin/sh\n"}})
			},
			wantErr: "/var/spool/cron/crontabs/root", outside: "/var/spool/cron/crontabs/root"},
		{name: "payload adds an apt source",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/apt/apt.conf.d/99beta": "APT::Update::Pre-Invoke {\"sh\"};\n"}})
			},
			wantErr: "/etc/apt/apt.conf.d/99beta"},
		{name: "payload file writable by others",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/beta/beta.conf": "x\n"},
					tree: func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "etc/beta/beta.conf"), 0o666) }})
			},
			wantErr: "writable by others", outside: "/etc/beta/beta.conf"},
		{name: "payload directory writable by others",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/beta/beta.conf": "x\n"},
					tree: func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "etc/beta"), 0o777) }})
			},
			wantErr: "writable by others", outside: "/etc/beta"},
		{name: "payload setuid file",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"var/lib/beta/tool": "#!/bin/sh\n"},
					tree: func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "var/lib/beta/tool"), 0o755|os.ModeSetuid) }})
			},
			wantErr: "/var/lib/beta/tool: mode", outside: "/var/lib/beta/tool"},
		{name: "payload setgid directory",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/beta/beta.conf": "x\n"},
					tree: func(t *testing.T, dir string) {
						os.Chmod(filepath.Join(dir, "etc/beta"), 0o755|os.ModeDir|os.ModeSetgid)
					}})
			},
			wantErr: "setuid or setgid", outside: "/etc/beta"},
		{name: "payload replaces a file the host has",
			setup: func(t *testing.T, b *bench) {
				os.MkdirAll(b.e.Root.Path("/etc"), 0o755)
				os.WriteFile(b.e.Root.Path("/etc/motd"), []byte("the admin's\n"), 0o644)
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"etc/motd": "attacker's\n"}})
			},
			wantErr: "/etc/motd: would replace a file the host already has",
			check: func(t *testing.T, b *bench, mark int) {
				if got, _ := os.ReadFile(b.e.Root.Path("/etc/motd")); string(got) != "the admin's\n" {
					t.Errorf("/etc/motd = %q", got)
				}
			}},
		{name: "unit hides a base unit",
			setup: func(t *testing.T, b *bench) {
				os.MkdirAll(b.e.Root.Path("/usr/lib/systemd/system"), 0o755)
				os.WriteFile(b.e.Root.Path("/usr/lib/systemd/system/ssh.service"), []byte("[Service]\nExecStart=/usr/sbin/sshd\n"), 0o644)
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{"usr/lib/systemd/system/ssh.service": unitWithInstall}})
			},
			check: func(t *testing.T, b *bench, mark int) {
				if got := b.calls(mark, `^(start|enable) .*ssh\.service`); len(got) != 0 {
					t.Errorf("a unit hiding the base's was started: %v", got)
				}
			}},
		{name: "unit file systemd will not load",
			setup: func(t *testing.T, b *bench) {
				b.publishHostile("beta", "2", hostileImage{files: map[string]string{
					"usr/lib/systemd/system/beta.service": unitWithInstall + strings.Repeat("#", 5<<20) + "\n"}})
			},
			wantErr: "unit file too large"},
		{name: "reboot-required through a /run linked out of the root",
			setup: func(t *testing.T, b *bench) {
				os.Symlink(outsideDir, b.e.Root.Path("/run"))
				b.e.Manifests.Entries["beta"].Update = "reboot"
				b.publishHostile("beta", "2", hostileImage{})
			},
			wantErr: "marking reboot required",
			check: func(t *testing.T, b *bench, mark int) {
				if es, _ := os.ReadDir(outsideDir); len(es) != 0 {
					t.Errorf("written outside the root: %v", es)
				}
			}},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t)
			b.publish("beta", "1")
			if r := b.apply(VerbInstall, "beta"); !r.OK {
				t.Fatalf("installing beta 1: %s", r.Error)
			}
			before, _ := os.ReadFile(b.e.Root.Path(rootfs.StateDir + "/state.json"))
			tt.setup(t, b)
			mark := len(b.rec.calls)
			r := b.apply(VerbUpdate, "beta")
			if tt.wantErr != "" {
				if r.OK || !strings.Contains(r.Error, tt.wantErr) {
					t.Fatalf("update = ok %v, error %q; want refused with %q", r.OK, r.Error, tt.wantErr)
				}
				if !strings.Contains(r.Error, "beta") {
					t.Errorf("refusal %q does not name the extension", r.Error)
				}
				if got := b.installed()["beta"]; got != "1" {
					t.Errorf("after the refusal beta = %q, want 1", got)
				}
				after, _ := os.ReadFile(b.e.Root.Path(rootfs.StateDir + "/state.json"))
				if !bytes.Equal(before, after) {
					t.Errorf("state.json changed by a refused update")
				}
				if got := b.calls(mark, "^(start|stop|restart|enable|disable) "); len(got) != 0 {
					t.Errorf("units touched by a refused update: %v", got)
				}
			} else if !r.OK {
				t.Fatalf("update refused: %s", r.Error)
			}
			if tt.outside != "" {
				if _, err := os.Lstat(b.e.Root.Path(tt.outside)); err == nil {
					t.Errorf("%s was written", tt.outside)
				}
				if _, err := os.Lstat(filepath.Join(filepath.Dir(b.e.Root.Dir()), strings.TrimPrefix(tt.outside, "/"))); err == nil {
					t.Errorf("%s was written beside the root", tt.outside)
				}
			}
			if tt.check != nil {
				tt.check(t, b, mark)
			}
		})
	}
}

// allow_etc lets a named privileged path through, and only that one; an
// enablement link for the image's own unit is its install intent.
func TestAllowEtcAndEnablementLinks(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skipf("SKIPPING: mksquashfs not found: %v", err)
	}
	b := newBench(t)
	b.e.Manifests.Entries["beta"].AllowEtc = []string{"sudoers.d/beta"}
	b.publishHostile("beta", "1", hostileImage{
		files: map[string]string{
			"etc/sudoers.d/beta":                  "beta ALL=(root) /usr/bin/beta-ctl\n",
			"usr/lib/systemd/system/beta.service": "[Service]\nExecStart=/bin/true\n",
		},
		tree: func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "etc/systemd/system/multi-user.target.wants"), 0o755)
			os.Symlink("/usr/lib/systemd/system/beta.service", filepath.Join(dir, "etc/systemd/system/multi-user.target.wants/beta.service"))
		}})
	mark := len(b.rec.calls)
	if r := b.apply(VerbInstall, "beta"); !r.OK {
		t.Fatalf("install with allow_etc: %s", r.Error)
	}
	if _, err := os.Stat(b.e.Root.Path("/etc/sudoers.d/beta")); err != nil {
		t.Errorf("allowed file not installed: %v", err)
	}
	if _, err := os.Lstat(b.e.Root.Path("/etc/systemd/system/multi-user.target.wants/beta.service")); err == nil {
		t.Errorf("the enablement link was copied; it is intent, not payload")
	}
	if got := b.calls(mark, `^start beta\.service$`); len(got) != 1 {
		t.Errorf("the linked unit was not started: %v", b.rec.calls[mark:])
	}
	st, _ := store.Store{Root: b.e.Root}.LoadState()
	if u := st.Extensions["beta"].Units; len(u) != 1 || u[0] != "beta.service" {
		t.Errorf("recorded units %v", u)
	}
}

// A signed release whose .manifest a mirror edited (an UPDATE= appended)
// is tampered: list shows it as such instead of its version, and the
// update is refused, before anything is downloaded.
func TestTamperedHintsRefused(t *testing.T) {
	b, priv := signedBeta(t)
	b.publish("beta", "2")
	rel := b.src.releases["beta"]
	manifest := filepath.Join(t.TempDir(), "beta.manifest")
	os.WriteFile(manifest, []byte("ID=debian\nPACKAGE_VERSION=2\n"), 0o644)
	b.src.files["beta-2.manifest"] = manifest
	rel.Manifest = source.Asset{Name: "beta-2.manifest"}
	b.signWith("beta", priv, map[string]string{"beta-2.manifest": manifest})
	os.WriteFile(manifest, []byte("ID=debian\nPACKAGE_VERSION=2\nUPDATE=service: ssh.service\n"), 0o644)

	items, err := b.e.List(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Name == "beta" && (it.AvailableVersion != "" || !strings.Contains(it.Problem, "tampered")) {
			t.Errorf("list shows beta as available %q, problem %q; want no version and tampered", it.AvailableVersion, it.Problem)
		}
	}
	mark := len(b.rec.calls)
	if r := b.apply(VerbUpdate, "beta"); r.OK || !strings.Contains(r.Error, "tampered") {
		t.Fatalf("update = %+v, want refused as tampered", r)
	}
	if got := b.calls(mark, "^download "); len(got) != 0 {
		t.Errorf("downloaded %v from a tampered release", got)
	}
	if got := b.installed()["beta"]; got != "1" {
		t.Errorf("beta = %s, want 1", got)
	}
}

// A release whose signature is older than the installed release's is
// never an update: a mirror cannot take an appliance back by re-serving
// an old signed release under a new tag.
func TestOlderSignatureIsNoUpdate(t *testing.T) {
	b, priv := signedBeta(t)
	s := store.Store{Root: b.e.Root}
	st, _ := s.LoadState()
	if st.Extensions["beta"].SignedAt.IsZero() {
		t.Fatal("the state does not record the signed time")
	}
	// The installed release was signed later than anything published now.
	st.Extensions["beta"].SignedAt = st.Extensions["beta"].SignedAt.AddDate(1, 0, 0)
	if err := s.SaveState(st); err != nil {
		t.Fatal(err)
	}
	b.publish("beta", "2")
	b.sign("beta", priv, false)
	if r := b.apply(VerbUpdate, "beta"); r.OK || !strings.Contains(r.Error, "older than the installed release's") {
		t.Fatalf("update = %+v, want refused as older", r)
	}
	if got := b.installed()["beta"]; got != "1" {
		t.Errorf("beta = %s, want 1", got)
	}
}

// EXTENSION_RESTART_UNITS= of the verified image: sysextd restarts the
// units after an update when the host's systemd-sysext does not (257), and
// leaves them to systemd-sysext when it does (262), also when the local
// manifest names the same unit: never twice.
func TestExtensionRestartUnits(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skipf("SKIPPING: mksquashfs not found: %v", err)
	}
	for _, tt := range []struct {
		systemd  int
		manifest string
		want     []string
	}{
		{257, "", []string{"restart beta.service"}},
		{262, "", nil},
		{257, "service: beta.service, other.service", []string{"restart beta.service", "restart other.service"}},
		{262, "service: beta.service, other.service", []string{"restart other.service"}},
	} {
		t.Run(fmt.Sprintf("%d %s", tt.systemd, tt.manifest), func(t *testing.T) {
			b := newBench(t)
			b.e.SystemdVersion = tt.systemd
			b.e.Manifests.Entries["beta"].Update = tt.manifest
			svc := map[string]string{"usr/lib/systemd/system/beta.service": "[Service]\nExecStart=/bin/true\n"}
			b.publishHostile("beta", "1", hostileImage{files: svc, fields: map[string]string{"EXTENSION_RESTART_UNITS": "beta.service"}})
			if r := b.apply(VerbInstall, "beta"); !r.OK {
				t.Fatal(r.Error)
			}
			b.publishHostile("beta", "2", hostileImage{files: svc, fields: map[string]string{"EXTENSION_RESTART_UNITS": "beta.service"}})
			mark := len(b.rec.calls)
			if r := b.apply(VerbUpdate, "beta"); !r.OK {
				t.Fatal(r.Error)
			}
			if got := b.calls(mark, "^restart "); !slices.Equal(got, tt.want) {
				t.Errorf("restarts %v, want %v", got, tt.want)
			}
		})
	}
}

// signedBeta is a bench whose entries are vendor entries under a vendor
// key, with beta 1 installed from a signed release.
func signedBeta(t *testing.T) (*bench, minisign.PrivateKey) {
	t.Helper()
	b := newBench(t)
	for _, en := range b.e.Manifests.Entries {
		en.Source = rootfs.VendorManifest
	}
	priv := vendorKey(t, b, "spamtagger")
	b.publish("beta", "1")
	b.sign("beta", priv, false)
	if r := b.apply(VerbInstall, "beta"); !r.OK {
		t.Fatal(r.Error)
	}
	return b, priv
}
