//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestDebExtensionOpenVMTools builds open-vm-tools the way the template
// does and checks what the daemon will meet in the field: an image that
// carries units under usr/lib/systemd/system (and nothing outside usr/ and
// opt/), whose tools run once merged, and whose service is conditioned on
// VMware, so that starting it here is skipped rather than failed.
func TestDebExtensionOpenVMTools(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	ovt := BuildDebExtension(t, base, "open-vm-tools", ExtOptions{Update: "service: open-vm-tools"})
	for _, f := range ovt.Files {
		if !strings.HasPrefix(f, "usr/") && !strings.HasPrefix(f, "opt/") {
			t.Errorf("image carries %s, outside usr/ and opt/", f)
		}
	}
	for _, want := range []string{
		"usr/lib/systemd/system/open-vm-tools.service",
		"usr/lib/systemd/system/vgauth.service",
		"usr/bin/vmware-toolbox-cmd",
		"usr/lib/extension-release.d/extension-release.sysext-open-vm-tools",
	} {
		if !slices.Contains(ovt.Files, want) {
			t.Errorf("image lacks %s", want)
		}
	}
	if got := ovt.Packages["open-vm-tools"]; got != ovt.Version || got == "" {
		t.Errorf("Packages[open-vm-tools] = %q, want PACKAGE_VERSION %q", got, ovt.Version)
	}
	if _, inBase := dpkgVersions(t, base.Dir+"/var/lib/dpkg/status")["libglib2.0-0t64"]; !inBase && ovt.Packages["libglib2.0-0t64"] == "" {
		t.Errorf("dependency libglib2.0-0t64 neither in base nor in image; packages: %v", ovt.Packages)
	}

	c := Boot(t, BootOptions{Base: base})
	c.AddExtension(t, ovt)
	c.MustExec(t, "systemd-sysext", "refresh")
	if got := mergedExtensions(t, c, "/usr"); !slices.Equal(got, []string{"sysext-open-vm-tools"}) {
		t.Fatalf("merged into /usr: %v, want [sysext-open-vm-tools]", got)
	}
	// The tools refuse to work outside VMware, but they must run: every
	// library they need comes from the base or the image.
	if out := c.MustExec(t, "ldd", "/usr/bin/vmtoolsd"); strings.Contains(out, "not found") {
		t.Errorf("vmtoolsd misses libraries once merged:\n%s", out)
	}
	if _, stderr, code := c.Exec(t, "vmware-checkvm"); code == 0 || !strings.Contains(stderr, "virtual machine") {
		t.Errorf("vmware-checkvm outside VMware: exit %d, stderr %q; want its own refusal", code, stderr)
	}
	if got := strings.TrimSpace(c.MustExec(t, "systemctl", "show", "-p", "LoadState", "--value", "open-vm-tools.service")); got != "loaded" {
		t.Errorf("open-vm-tools.service LoadState = %q, want loaded", got)
	}
	_, stderr, code := c.Exec(t, "systemctl", "start", "open-vm-tools.service")
	props := c.MustExec(t, "systemctl", "show", "-p", "ActiveState,ConditionResult,Result", "open-vm-tools.service")
	t.Logf("finding: systemctl start open-vm-tools.service outside VMware: exit %d %s; %s", code, strings.TrimSpace(stderr), strings.Join(strings.Fields(props), " "))
	if code != 0 || !strings.Contains(props, "ConditionResult=no") {
		t.Errorf("start outside VMware: exit %d, %s; want exit 0 with ConditionResult=no", code, props)
	}
}
