//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestVarlinkAPI drives sysextd's API on the booted trixie with varlinkctl,
// systemd's own Varlink client: the socket unit activates the daemon, any
// user may read, only root and admin_group may change, changes stream their
// progress, and a Watch hears a change made by sysextctl in-process.
func TestVarlinkAPI(t *testing.T) {
	requireRoot(t)
	base := EnsureBase(t)
	a := newAppliance(t, base, GoBuild(t, "./cmd/sysextctl"))
	a.c.CopyIn(t, GoBuild(t, "./cmd/sysextd"), "/usr/local/bin/sysextd", 0o755)
	a.publish(BuildDebExtension(t, base, "hello", ExtOptions{}))
	a.c.WriteFile(t, "/etc/spamtagger/etc/sysext.toml", []byte("[hello]\nurl = \"https://github.com/SpamTagger/sysext-hello\"\n"), 0o644)
	a.c.WriteFile(t, "/etc/sysextd/sysextd.toml", []byte(fmt.Sprintf("github_api = %q\nadmin_group = \"sysext-admin\"\n", a.gh.URL())), 0o644)
	top := repoTop(t)
	for _, u := range []string{"sysextd.service", "sysextd.socket"} {
		data, err := os.ReadFile(filepath.Join(top, "packaging", u))
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(strings.ReplaceAll(string(data), "ExecStart=/usr/bin/sysextd", "ExecStart=/usr/local/bin/sysextd"))
		a.c.WriteFile(t, "/etc/systemd/system/"+u, data, 0o644)
	}
	a.c.MustExec(t, "groupadd", "--system", "sysext-admin")
	a.c.MustExec(t, "useradd", "--system", "--groups", "sysext-admin", "webui")
	a.c.MustExec(t, "systemctl", "daemon-reload")
	a.c.MustExec(t, "systemctl", "start", "sysextd.socket")
	const sock = "/run/sysextd/io.spamtagger.Sysext"
	// asUser runs argv as user with its groups (nobody's is nogroup).
	asUser := func(user string, argv ...string) []string {
		group := user
		if user == "nobody" {
			group = "nogroup"
		}
		return append([]string{"setpriv", "--reuid=" + user, "--regid=" + group, "--init-groups"}, argv...)
	}
	vl := func(argv ...string) (string, string, int) {
		t.Helper()
		out, errOut, code := a.c.Exec(t, argv...)
		t.Logf("%s -> %d\n%s%s", strings.Join(argv, " "), code, out, errOut)
		return out, errOut, code
	}

	t.Run("introspect activates the daemon", func(t *testing.T) {
		out, _, code := vl("varlinkctl", "introspect", sock, "io.spamtagger.Sysext")
		if code != 0 || !strings.Contains(out, "method Install(") || !strings.Contains(out, "error Busy") {
			t.Fatalf("introspect: exit %d\n%s", code, out)
		}
		if got := a.unit("ActiveState", "sysextd.service"); got != "active" && got != "activating" {
			t.Errorf("sysextd.service is %s after a connection, want started by the socket", got)
		}
	})

	t.Run("List as nobody", func(t *testing.T) {
		out, _, code := vl(asUser("nobody", "varlinkctl", "call", sock, "io.spamtagger.Sysext.List", "{}")...)
		if code != 0 || !strings.Contains(out, `"hello"`) {
			t.Fatalf("List as nobody: exit %d\n%s", code, out)
		}
		// sysextctl status as nobody answers through the daemon, offline.
		if _, _, code := vl(asUser("nobody", "sysextctl", "status", "--json")...); code != 0 {
			t.Errorf("sysextctl status --json as nobody: exit %d", code)
		}
	})

	t.Run("Install as nobody is refused", func(t *testing.T) {
		_, errOut, code := vl(asUser("nobody", "varlinkctl", "call", sock, "io.spamtagger.Sysext.Install", `{"names":["hello"]}`)...)
		if code == 0 || !strings.Contains(errOut, "io.spamtagger.Sysext.PermissionDenied") {
			t.Fatalf("Install as nobody: exit %d, %s; want PermissionDenied", code, errOut)
		}
		if a.exists("/usr/bin/hello") {
			t.Fatal("hello installed by nobody")
		}
	})

	// A Watch runs from here on, as a transient unit writing one JSON
	// object a line.
	a.c.MustExec(t, "systemd-run", "--unit=e2e-watch", "-p", "StandardOutput=file:/run/e2e-watch.json",
		"varlinkctl", "--json=short", "call", "--more", sock, "io.spamtagger.Sysext.Watch", "{}")
	a.c.WaitExec(t, 30*time.Second, "grep", "-q", `"subscribed"`, "/run/e2e-watch.json")
	kind := func(k, by string) *regexp.Regexp {
		return regexp.MustCompile(`"kind":"` + k + `".*"by":"` + by + `"`)
	}
	waitEvent := func(t *testing.T, re *regexp.Regexp) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if re.MatchString(a.cat("/run/e2e-watch.json")) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("Watch never heard %s:\n%s", re, a.cat("/run/e2e-watch.json"))
	}

	t.Run("Install as root with more", func(t *testing.T) {
		out, _, code := vl("varlinkctl", "--json=short", "call", "--more", sock, "io.spamtagger.Sysext.Install", `{"names":["hello"]}`)
		if code != 0 {
			t.Fatalf("Install as root: exit %d", code)
		}
		var phases []string
		for _, m := range regexp.MustCompile(`"phase":"([a-z]+)"}`).FindAllStringSubmatch(out, -1) {
			if len(phases) == 0 || phases[len(phases)-1] != m[1] {
				phases = append(phases, m[1])
			}
		}
		if strings.Join(phases, " ") != "download verify place payload activate units action commit" {
			t.Errorf("streamed phases %v", phases)
		}
		if !strings.Contains(out, `"ok":true`) {
			t.Errorf("no successful result in\n%s", out)
		}
		if got := strings.TrimSpace(a.c.MustExec(t, "hello")); got != "Hello, world!" {
			t.Errorf("hello printed %q", got)
		}
		waitEvent(t, kind("installed", "api"))
	})

	t.Run("Watch hears a CLI remove", func(t *testing.T) {
		// --root / makes sysextctl work in-process: the daemon only hears of
		// it through the history file.
		a.c.MustExec(t, "sysextctl", "--root", "/", "--github-api", a.gh.URL(), "remove", "hello")
		waitEvent(t, kind("removed", "cli"))
		if a.exists("/usr/bin/hello") {
			t.Error("hello still merged after remove")
		}
	})

	t.Run("an admin_group member installs", func(t *testing.T) {
		out, _, code := vl(asUser("webui", "varlinkctl", "--json=short", "call", sock, "io.spamtagger.Sysext.Install", `{"names":["hello"]}`)...)
		if code != 0 || !strings.Contains(out, `"ok":true`) {
			t.Fatalf("Install as webui (sysext-admin): exit %d\n%s", code, out)
		}
		if got := strings.TrimSpace(a.c.MustExec(t, "hello")); got != "Hello, world!" {
			t.Errorf("hello printed %q", got)
		}
		// sysextctl through the daemon, as the member too.
		if _, _, code := vl(asUser("webui", "sysextctl", "hold", "hello")...); code != 0 {
			t.Errorf("sysextctl hold as webui: exit %d", code)
		}
	})
}

// repoTop is the repository's top directory.
func repoTop(t *testing.T) string {
	t.Helper()
	gomod := strings.TrimSpace(mustRun(t, t.Context(), "go", "env", "GOMOD"))
	return filepath.Dir(gomod)
}
