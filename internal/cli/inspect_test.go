package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/shadow"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	root := rootfs.New(dir)
	s := store.Store{Root: root}
	os.MkdirAll(root.Path(rootfs.ExtensionsDir), 0o755)
	sqfs.Build(t, root.Path(rootfs.ExtensionsDir), sqfs.Spec{Name: "sysext-a", Files: map[string]string{"usr/bin/a": "a", "usr/share/common": "a"}})
	sqfs.Build(t, root.Path(rootfs.ExtensionsDir), sqfs.Spec{Name: "sysext-b", Files: map[string]string{"usr/bin/b": "b", "usr/share/common": "b"}})
	if err := s.SaveState(&store.State{Extensions: map[string]*store.Record{
		"a": {Name: "a", Image: "sysext-a"}, "b": {Name: "b", Image: "sysext-b"}}}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(root.Path("/usr/bin"), 0o755)
	os.WriteFile(root.Path("/usr/bin/a"), []byte("base"), 0o755)

	code, out, errOut := runCLI(t, "--root", dir, "inspect", "a")
	if code != 0 {
		t.Fatalf("inspect a: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"Shadows 1 file(s)", "  /usr/bin/a\n", "/usr/share/common (also in b; sysext-b's copy is seen)", "Adds 2 file(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect a lacks %q:\n%s", want, out)
		}
	}

	fresh := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "sysext-c", Files: map[string]string{"opt/c/run": "c"}})
	code, out, _ = runCLI(t, "--root", dir, "--json", "inspect", fresh)
	var rep shadow.Report
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Adds) != 1 || rep.Adds[0] != "/opt/c/run" || rep.Shadowing() {
		t.Errorf("inspect FILE --json: exit %d, %s", code, out)
	}

	code, _, errOut = runCLI(t, "--root", dir, "inspect", "nope")
	if code != ExitUsage || !strings.Contains(errOut, "nope") {
		t.Errorf("inspect nope: exit %d, %q; want %d naming it", code, errOut, ExitUsage)
	}
	bad := filepath.Join(t.TempDir(), "bad.raw")
	os.WriteFile(bad, []byte("garbage"), 0o644)
	code, _, errOut = runCLI(t, "--root", dir, "inspect", bad)
	if code != ExitFailure || !strings.Contains(errOut, "bad.raw") {
		t.Errorf("inspect garbage: exit %d, %q; want %d naming the file", code, errOut, ExitFailure)
	}
}

// inspect shows the etc/ payload an image carries, and what the payload
// policy would refuse, before anything is installed.
func TestInspectPayload(t *testing.T) {
	dir := t.TempDir()
	img := sqfs.Build(t, t.TempDir(), sqfs.Spec{Name: "sysext-p", Files: map[string]string{
		"usr/bin/p": "p", "etc/p/p.conf": "x\n", "etc/sudoers.d/p": "p ALL=(ALL) ALL\n"}})
	code, out, errOut := runCLI(t, "--root", dir, "inspect", img)
	if code != 0 {
		t.Fatalf("inspect: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"Installs 1 file(s) under /etc and /var", "/etc/p/p.conf", "refuses 1 entr", "/etc/sudoers.d/p: grants root"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "--root", dir, "--json", "inspect", img)
	var res struct {
		Adds    []string `json:"adds"`
		Payload []struct {
			Path string `json:"path"`
		} `json:"payload"`
		Refused []struct {
			Path string `json:"path"`
		} `json:"payload_refused"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Adds) != 1 || len(res.Payload) != 1 || len(res.Refused) != 1 ||
		res.Refused[0].Path != "/etc/sudoers.d/p" {
		t.Errorf("inspect --json: exit %d, %s", code, out)
	}
}
