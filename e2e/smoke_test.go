//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// sysextStatus is one hierarchy of `systemd-sysext status --json=short`.
type sysextStatus struct {
	Hierarchy  string          `json:"hierarchy"`
	Extensions json.RawMessage `json:"extensions"`
}

// mergedExtensions returns the extensions merged into hierarchy, reading
// `systemd-sysext status --json=short` inside c. "extensions" is the string
// "none" or an array of names.
func mergedExtensions(t *testing.T, c *Container, hierarchy string) []string {
	t.Helper()
	out := c.MustExec(t, "systemd-sysext", "status", "--json=short")
	var status []sysextStatus
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatalf("decoding systemd-sysext status %q: %v", out, err)
	}
	for _, h := range status {
		if h.Hierarchy != hierarchy {
			continue
		}
		var names []string
		if err := json.Unmarshal(h.Extensions, &names); err == nil {
			return names
		}
		var none string
		if err := json.Unmarshal(h.Extensions, &none); err != nil || none != "none" {
			t.Fatalf("extensions of %s: unexpected %s", hierarchy, h.Extensions)
		}
		return nil
	}
	t.Fatalf("no hierarchy %s in systemd-sysext status: %s", hierarchy, out)
	return nil
}

// TestHarnessSmoke proves the harness on its own, on each dist: a booted Debian with
// systemd as PID 1 merges an extension built from a Debian package, runs a
// unit shipped by an extension, reaches a server on the host's loopback, and
// keeps its files across a reboot.
func TestHarnessSmoke(t *testing.T) {
	requireRoot(t)
	start := time.Now()
	ForEachDist(t, func(t *testing.T, base *Base) { harnessSmoke(t, base, start) })
}

func harnessSmoke(t *testing.T, base *Base, start time.Time) {
	t.Logf("base ready in %s: systemd %s, debootstrap %s of %s took %s",
		time.Since(start).Round(time.Millisecond), base.Stamp.SystemdVersion,
		base.Stamp.DebootstrapVersion, base.Stamp.Mirror, base.Stamp.Duration.Round(time.Second))

	c := Boot(t, BootOptions{Base: base})
	version := c.MustExec(t, "systemctl", "--version")
	t.Logf("inside: %s", strings.SplitN(version, "\n", 2)[0])
	if got := strings.TrimSpace(c.MustExec(t, "systemd-detect-virt")); got != "systemd-nspawn" {
		t.Errorf("systemd-detect-virt = %q, want systemd-nspawn", got)
	}
	if got := mergedExtensions(t, c, "/usr"); len(got) != 0 {
		t.Fatalf("fresh container has merged extensions %v, want none", got)
	}

	start = time.Now()
	hello := BuildDebExtension(t, base, "hello", ExtOptions{})
	t.Logf("hello %s image in %s", hello.Version, time.Since(start).Round(time.Millisecond))
	if !slices.Contains(hello.Files, "usr/bin/hello") {
		t.Fatalf("hello image files %v lack usr/bin/hello", hello.Files)
	}
	if got, want := hello.Get("NAME"), "sysext-hello"; got != want {
		t.Errorf("NAME = %q, want %q", got, want)
	}
	c.AddExtension(t, hello)
	c.MustExec(t, "systemd-sysext", "refresh")
	if got, want := strings.TrimSpace(c.MustExec(t, "hello")), "Hello, world!"; got != want {
		t.Errorf("hello printed %q, want %q", got, want)
	}
	if got := mergedExtensions(t, c, "/usr"); !slices.Equal(got, []string{"sysext-hello"}) {
		t.Errorf("merged into /usr: %v, want [sysext-hello]", got)
	}

	t.Run("host loopback reachable", func(t *testing.T) {
		const token = "sysextd-e2e-loopback-ok"
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", token, r.URL.Path)
		}))
		defer srv.Close()
		u, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s; printf 'GET /probe HTTP/1.0\r\nHost: e2e\r\n\r\n' >&3; cat <&3`,
			u.Hostname(), u.Port())
		out := c.MustExec(t, "bash", "-c", script)
		if want := token + " /probe"; !strings.Contains(out, want) {
			t.Errorf("response from host %s = %q, want it to contain %q", srv.URL, out, want)
		}
	})

	svc := BuildServiceExtension(t, "e2e-svc", "1.0", ExtOptions{Update: "service: e2e-svc"})
	c.AddExtension(t, svc)
	c.MustExec(t, "systemd-sysext", "refresh")
	load := strings.TrimSpace(c.MustExec(t, "systemctl", "show", "-p", "LoadState", "--value", "e2e-svc.service"))
	t.Logf("finding: right after refresh, before daemon-reload, e2e-svc.service LoadState=%s", load)
	c.MustExec(t, "systemctl", "daemon-reload")
	c.MustExec(t, "systemctl", "start", "e2e-svc.service")
	if got := strings.TrimSpace(c.MustExec(t, "systemctl", "is-active", "e2e-svc.service")); got != "active" {
		t.Errorf("e2e-svc is %q, want active\n%s", got, c.Journal(t, "e2e-svc.service"))
	}
	if got := strings.TrimSpace(c.WaitExec(t, 10*time.Second, "cat", "/run/e2e-svc/started-version")); got != "1.0" {
		t.Errorf("started version = %q, want 1.0", got)
	}
	want := []string{"sysext-e2e-svc", "sysext-hello"}
	if got := mergedExtensions(t, c, "/usr"); !slices.Equal(sortedCopy(got), want) {
		t.Errorf("merged into /usr: %v, want %v", got, want)
	}

	// Whether a reboot merges /var/lib/extensions depends on
	// systemd-sysext.service being enabled, which debootstrap does not do.
	enabled, _, _ := c.Exec(t, "systemctl", "is-enabled", "systemd-sysext.service")
	enabled = strings.TrimSpace(enabled)
	t.Logf("finding: systemd-sysext.service is %q on a fresh trixie", enabled)
	start = time.Now()
	c.Reboot(t)
	t.Logf("reboot took %s", time.Since(start).Round(time.Millisecond))
	got := mergedExtensions(t, c, "/usr")
	if enabled == "enabled" && len(got) != 2 || enabled != "enabled" && len(got) != 0 {
		t.Errorf("after reboot with systemd-sysext.service %s, merged: %v", enabled, got)
	}
	if _, err := c.ReadFileErr("/var/lib/extensions/sysext-hello.raw"); err != nil {
		t.Errorf("image lost across reboot: %v", err)
	}

	// Enabled, the images are merged at boot, before units start.
	c.MustExec(t, "systemctl", "enable", "systemd-sysext.service")
	c.MustExec(t, "systemd-sysext", "refresh")
	c.MustExec(t, "systemctl", "daemon-reload")
	c.MustExec(t, "systemctl", "enable", "e2e-svc.service")
	c.Reboot(t)
	if got := mergedExtensions(t, c, "/usr"); !slices.Equal(sortedCopy(got), want) {
		t.Errorf("after reboot with systemd-sysext.service enabled, merged: %v, want %v", got, want)
	}
	if got, want := strings.TrimSpace(c.MustExec(t, "hello")), "Hello, world!"; got != want {
		t.Errorf("after reboot hello printed %q, want %q", got, want)
	}
	active, _, _ := c.Exec(t, "systemctl", "is-active", "e2e-svc.service")
	t.Logf("finding: e2e-svc.service enabled in /etc, extension merged at boot: %s", strings.TrimSpace(active))
	t.Logf("systemd-sysext.service at boot:\n%s", c.Journal(t, "systemd-sysext.service"))
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
