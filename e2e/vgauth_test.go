//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/image/imagetest"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/payload"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

// TestVGAuthFromTemplateImage builds open-vm-tools the template's way (all
// package files, etc/ included, zstd, no -all-root) and shows, on a booted
// trixie: VGAuthService fails from the merged /usr alone ("catalog file
// not found": its configuration lives only in the image's etc/); once
// internal/payload has installed the etc/ files it runs; a local edit of a
// conffile survives an update; remove leaves no unmodified file behind.
// On trixie and on forky, each with its own open-vm-tools.
//
// It drives payload.Install/Remove directly against the container's root,
// the phase the engine runs; TestVGAuthThroughSysextctl is the product's
// way.
func TestVGAuthFromTemplateImage(t *testing.T) {
	requireRoot(t)
	ForEachDist(t, vgauthFromTemplateImage)
}

func vgauthFromTemplateImage(t *testing.T, base *Base) {
	ovt := BuildTemplateExtension(t, base, "open-vm-tools", ExtOptions{Update: "service: open-vm-tools"})
	for _, want := range []string{"etc/vmware-tools/vgauth.conf", "usr/bin/VGAuthService", "usr/lib/systemd/system/vgauth.service"} {
		if !slices.Contains(ovt.Files, want) {
			t.Fatalf("template image lacks %s", want)
		}
	}
	info, err := image.InspectNamed(t.Context(), ovt.Path, "sysext-open-vm-tools_trixie_amd64.squashfs")
	if err != nil {
		t.Fatal(err)
	}
	deb, _ := imagetest.Arch()
	br, err := os.OpenRoot(base.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	hostOS, _, err := osrelease.ReadOS(br) // forky's has no VERSION_ID
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := image.Validate(info, image.HostOf(hostOS, deb), ovt.Name)
	if err != nil {
		t.Fatalf("template image refused: %v", err)
	}
	t.Logf("validator warnings: %q", warnings)

	c := Boot(t, BootOptions{Base: base, LoopDevices: 256}) // the machine's loop devices are shared: indexes run high
	c.AddExtension(t, ovt)
	refreshRetryingBusy(t, c)
	c.WriteFile(t, "/etc/systemd/system/vgauth.service.d/10-e2e.conf", []byte("[Unit]\nConditionVirtualization=\n"), 0o644)
	c.MustExec(t, "systemctl", "daemon-reload")

	// Without the payload: what the issue reports.
	c.Exec(t, "systemctl", "start", "vgauth.service")
	time.Sleep(2 * time.Second)
	if state := unitState(t, c, "vgauth.service"); state == "active" {
		t.Errorf("vgauth.service is active without its etc/ files: the issue's failure no longer reproduces, so this test proves nothing")
	} else {
		t.Logf("without etc/ payload vgauth.service is %s; journal:\n%s", state, tail(c.Journal(t, "vgauth.service"), 8))
	}
	c.Exec(t, "systemctl", "stop", "vgauth.service")
	c.Exec(t, "systemctl", "reset-failed", "vgauth.service")

	root := rootfs.New(c.Root())
	recs, _, err := payload.Install(t.Context(), root, ovt.Path, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("payload: %d files installed", len(recs))
	if _, err := c.ReadFileErr("/etc/vmware-tools/vgauth.conf"); err != nil {
		t.Fatalf("vgauth.conf not installed: %v", err)
	}
	c.MustExec(t, "systemctl", "start", "vgauth.service")
	deadline := time.Now().Add(10 * time.Second)
	for unitState(t, c, "vgauth.service") != "active" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // a crash on a missing catalog comes right after start
	if state := unitState(t, c, "vgauth.service"); state != "active" {
		t.Fatalf("vgauth.service is %s with its payload installed; journal:\n%s", state, tail(c.Journal(t, "vgauth.service"), 20))
	}
	if j := c.Journal(t, "vgauth.service"); strings.Contains(strings.ToLower(j), "catalog file not found") && !strings.Contains(j, "Started") {
		t.Errorf("journal still reports a missing catalog:\n%s", tail(j, 20))
	}
	pid := strings.TrimSpace(c.MustExec(t, "systemctl", "show", "-p", "MainPID", "--value", "vgauth.service"))
	if exe, _, _ := c.Exec(t, "readlink", "/proc/"+pid+"/exe"); !strings.HasSuffix(strings.TrimSpace(exe), "VGAuthService") {
		t.Errorf("MainPID %s runs %q, want VGAuthService", pid, exe)
	}

	// A local edit of a conffile survives an update.
	conf := "/etc/vmware-tools/vgauth.conf"
	edited := append(c.ReadFile(t, conf), []byte("# local edit by the admin\n")...)
	c.WriteFile(t, conf, edited, 0o644)
	v2 := BuildTemplateExtension(t, base, "open-vm-tools", ExtOptions{Update: "service: open-vm-tools",
		BuildTime: time.Now().Add(time.Hour), ExtraFiles: map[string]string{"etc/vmware-tools/e2e-new.conf": "new in v2\n"}})
	recs2, _, err := payload.Install(t.Context(), root, v2.Path, recs, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ReadFile(t, conf); string(got) != string(edited) {
		t.Errorf("the update replaced the admin's %s", conf)
	}
	if got, err := c.ReadFileErr("/etc/vmware-tools/e2e-new.conf"); err != nil || string(got) != "new in v2\n" {
		t.Errorf("new conffile of v2: %q, %v", got, err)
	}

	// Remove leaves no unmodified file behind, and keeps the edited one.
	c.MustExec(t, "systemctl", "stop", "vgauth.service")
	if _, err := payload.Remove(t.Context(), root, recs2, ""); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs2 {
		_, err := os.Lstat(filepath.Join(c.Root(), r.Path))
		switch {
		case r.Path == conf:
			if err != nil {
				t.Errorf("remove deleted the admin's edited %s", conf)
			}
		case r.Installed && err == nil:
			t.Errorf("remove left the unmodified %s", r.Path)
		}
	}
}

func unitState(t *testing.T, c *Container, unit string) string {
	t.Helper()
	out, _, _ := c.Exec(t, "systemctl", "is-active", unit)
	return strings.TrimSpace(out)
}

// refreshRetryingBusy runs systemd-sysext refresh, retrying while the loop
// device attach fails with EBUSY: the machine's loop devices are shared by
// every test running on it, and attaching races with theirs.
func refreshRetryingBusy(t *testing.T, c *Container) string {
	t.Helper()
	for i := 0; ; i++ {
		out, stderr, code := c.Exec(t, "systemd-sysext", "refresh")
		if code == 0 {
			return out
		}
		if i == 10 || !strings.Contains(stderr, "Device or resource busy") {
			t.Fatalf("systemd-sysext refresh: exit %d: %s", code, stderr)
		}
		t.Logf("systemd-sysext refresh: %s (try %d, retrying)", strings.TrimSpace(stderr), i+1)
		time.Sleep(time.Second)
	}
}

// TestVGAuthThroughSysextctl is TestVGAuthFromTemplateImage through the
// product, on trixie and on forky: sysextctl install/update/remove of a
// template-built open-vm-tools (the dist's own packages, etc/ files
// installed like conffiles) from a GitHub stand-in. VGAuthService runs on
// its installed etc/ files, an admin's edit survives an update, remove
// leaves only the edited file.
func TestVGAuthThroughSysextctl(t *testing.T) {
	requireRoot(t)
	ForEachDist(t, vgauthThroughSysextctl)
}

func vgauthThroughSysextctl(t *testing.T, base *Base) {
	gh := fakegithub.New()
	t.Cleanup(gh.Close)
	a := &appliance{t: t, gh: gh, dist: base.Dist, c: Boot(t, BootOptions{Base: base, LoopDevices: 256})}
	a.c.CopyIn(t, GoBuild(t, "./cmd/sysextctl"), "/usr/local/bin/sysextctl", 0o755)
	a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte(`[open-vm-tools]
url = "https://github.com/SpamTagger/sysext-open-vm-tools"
update = "service: vgauth"
`), 0o644)
	a.c.WriteFile(t, "/etc/systemd/system/vgauth.service.d/10-e2e.conf", []byte("[Unit]\nConditionVirtualization=\n"), 0o644)

	a.publish(BuildTemplateExtension(t, base, "open-vm-tools", ExtOptions{Update: "service: vgauth"}))
	a.mustCtl("install", "open-vm-tools")
	conf := "/etc/vmware-tools/vgauth.conf"
	if !a.exists(conf) {
		t.Fatalf("install did not put %s on the host", conf)
	}
	a.c.MustExec(t, "systemctl", "daemon-reload")
	a.c.MustExec(t, "systemctl", "restart", "vgauth.service")
	a.c.WaitExec(t, 10*time.Second, "systemctl", "is-active", "--quiet", "vgauth.service")
	time.Sleep(time.Second)
	if state := unitState(t, a.c, "vgauth.service"); state != "active" {
		t.Fatalf("vgauth.service is %s after install; journal:\n%s", state, tail(a.c.Journal(t, "vgauth.service"), 20))
	}

	edited := append(a.c.ReadFile(t, conf), []byte("# local edit by the admin\n")...)
	a.c.WriteFile(t, conf, edited, 0o644)
	a.publish(BuildTemplateExtension(t, base, "open-vm-tools", ExtOptions{Update: "service: vgauth", BuildTime: time.Now().Add(time.Hour)}))
	a.mustCtl("update", "open-vm-tools")
	if got := a.c.ReadFile(t, conf); string(got) != string(edited) {
		t.Errorf("update replaced the admin's %s", conf)
	}

	a.mustCtl("remove", "open-vm-tools")
	out := a.c.MustExec(t, "sh", "-c", "find /etc/vmware-tools -type f 2>/dev/null")
	if got := strings.Fields(out); len(got) != 1 || got[0] != conf {
		t.Errorf("after remove /etc/vmware-tools holds %q, want only the edited %s", got, conf)
	}
}
