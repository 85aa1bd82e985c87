package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/release"
)

// emptyRoot is a root with an os-release and no manifest at all.
func emptyRoot(t *testing.T) rootfs.Root {
	t.Helper()
	root := rootfs.New(t.TempDir())
	os.MkdirAll(root.Path("/etc"), 0o755)
	os.WriteFile(root.Path(rootfs.EtcOSRelease), []byte("ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n"), 0o644)
	return root
}

// Exit codes come from error types, never from error text: a corrupt state
// file under a root whose path contains "arg" and "flag" is a failure (1),
// not bad usage (2).
func TestCorruptStateUnderTargetRootExits1(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tmp", "target-flag")
	os.MkdirAll(dir, 0o755)
	src := copyRoot(t, "kvm")
	if out, err := execCommand("cp", "-a", src.Dir()+"/.", dir); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := newFixture(t, rootfs.New(dir))
	f.write(rootfs.StateDir+"/state.json", "{not json")
	for _, args := range [][]string{{"list", "--offline"}, {"update", "--dry-run"}} {
		_, stderr, code := f.run(args...)
		if code != ExitFailure {
			t.Errorf("%v with a corrupt state: exit %d, want %d (stderr %q)", args, code, ExitFailure, stderr)
		}
		if n := strings.Count(stderr, "state.json"); n != 1 {
			t.Errorf("%v: the state error is printed %d times, want once:\n%s", args, n, stderr)
		}
	}
}

func TestUsageErrorsAreTyped(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"lst"}, ExitUsage, `unknown command "lst"`},
		{[]string{"lst"}, ExitUsage, "did you mean list?"},
		{[]string{"list", "extra"}, ExitUsage, "unknown command"},
		{[]string{"explain"}, ExitUsage, "accepts 1 arg"},
		{[]string{"auto", "x"}, ExitUsage, "unknown command"},
		{[]string{"--max-size", "lots", "list"}, ExitUsage, "invalid argument"},
		{[]string{"--help"}, ExitOK, ""},
		{[]string{"help", "install"}, ExitOK, ""},
		{[]string{"-h"}, ExitOK, ""},
	}
	for _, tt := range tests {
		_, stderr, code := f.run(tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

func TestNoManifest(t *testing.T) {
	f := newFixture(t, emptyRoot(t))
	out, stderr, code := f.run("list", "--offline", "--json")
	if code != 0 || out != "[]\n" {
		t.Errorf("list --json with nothing: exit %d, stdout %q; want 0 and []", code, out)
	}
	for _, p := range []string{rootfs.VendorManifest, rootfs.LocalManifest, rootfs.DropinDir + "/*.toml"} {
		if !strings.Contains(stderr, f.root.Path(p)) {
			t.Errorf("note does not name %s: %q", p, stderr)
		}
	}
	out, _, _ = f.run("list", "--offline")
	if !strings.Contains(out, "no extensions") {
		t.Errorf("list with nothing: %q, want a sentence, not a bare header", out)
	}
	_, stderr, code = f.run("explain", "hello")
	if code != ExitUsage || !strings.Contains(stderr, "no manifest found; looked for "+f.root.Path(rootfs.VendorManifest)) {
		t.Errorf("explain hello: exit %d, stderr %q; want 2 and the paths looked for", code, stderr)
	}
	if _, stderr, _ := f.run("-q", "list", "--offline"); stderr != "" {
		t.Errorf("-q list: stderr %q, want nothing", stderr)
	}
}

func TestExplainUnknownNamesManifestsRead(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	_, stderr, code := f.run("explain", "nope")
	if code != ExitUsage || !strings.Contains(stderr, "manifests read: "+f.root.Path(rootfs.VendorManifest)) {
		t.Errorf("explain nope: exit %d, stderr %q", code, stderr)
	}
}

// One bad entry: reported and left out; the other entries of its file are
// listed and explained; mutating verbs refuse; warnings obey -q.
func TestBadEntryIsLeftOutAlone(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	f.write(rootfs.LocalManifest, `[mine]
url = "https://github.com/me/mine"
pci_id = ["zzzz"]
update = "restart"

[good]
url = "https://github.com/me/good"
virt_env = ["vmwar"]
colour = "red"
`)
	out, stderr, code := f.run("list", "--offline")
	if code != ExitUsage {
		t.Errorf("list exit %d, want %d", code, ExitUsage)
	}
	if !strings.Contains(out, "good") || !strings.Contains(out, "open-vm-tools") || strings.Contains(out, "mine ") {
		t.Errorf("list = %q, want good and the vendor entries, not mine", out)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var problems []string
	for _, l := range lines {
		if strings.Contains(l, rootfs.LocalManifest+":") {
			problems = append(problems, l)
		}
	}
	if len(problems) != 4 {
		t.Errorf("want 4 lines naming the file (2 errors, 2 warnings), got %d:\n%s", len(problems), stderr)
	}
	if !strings.Contains(stderr, `did you mean "vmware"?`) {
		t.Errorf("no suggestion for vmwar: %s", stderr)
	}
	_, stderr, code = f.run("explain", "mine")
	if code != ExitUsage || !strings.Contains(stderr, "mine is left out") || !strings.Contains(stderr, "zzzz") || strings.Contains(stderr, "unknown extension") {
		t.Errorf("explain mine: exit %d, stderr %q; want its problems", code, stderr)
	}
	if out, _, _ := f.run("explain", "good"); !strings.Contains(out, "good (") {
		t.Errorf("explain good = %q, want the entry explained", out)
	}
	if _, stderr, code := f.run("install", "good"); code != ExitUsage || !strings.Contains(stderr, "refusing") {
		t.Errorf("install good: exit %d, stderr %q; want a refusal", code, stderr)
	}
	_, stderr, _ = f.run("-q", "list", "--offline")
	if strings.Contains(stderr, "warning") || !strings.Contains(stderr, "zzzz") {
		t.Errorf("-q: stderr %q, want errors without warnings", stderr)
	}
}

// Each network error once, on stderr, with a hint; nothing about it under
// the table.
func TestNetworkErrorPrintedOnce(t *testing.T) {
	for _, tt := range []struct {
		fault fakegithub.Fault
		hint  string
	}{
		{fakegithub.FaultServerError, "--offline"},
		{fakegithub.FaultRateLimit, "GITHUB_TOKEN"},
	} {
		f := newFixture(t, copyRoot(t, "kvm"))
		f.publish(release.Ext{Package: "hello", Version: "1.0-1", Repo: "sysext-template"})
		f.gh.SetAPIFault(tt.fault)
		out, stderr, code := f.run("list")
		if code != ExitNetwork {
			t.Errorf("fault %v: exit %d, want %d", tt.fault, code, ExitNetwork)
		}
		if strings.Contains(out, "500") || strings.Contains(out, "rate limit") {
			t.Errorf("fault %v: the error is also under the table:\n%s", tt.fault, out)
		}
		if !strings.Contains(stderr, "hint:") || !strings.Contains(stderr, tt.hint) {
			t.Errorf("fault %v: stderr %q, want a hint naming %s", tt.fault, stderr, tt.hint)
		}
		_, stderr, code = f.run("install", "hello", "--dry-run")
		out, _, _ = f.run("install", "hello", "--dry-run")
		if code != ExitNetwork || strings.Contains(out, "nothing to do") || !strings.Contains(stderr, "cannot plan") {
			t.Errorf("fault %v: install --dry-run exit %d, stdout %q, stderr %q; want 4, no 'nothing to do'", tt.fault, code, out, stderr)
		}
	}
}

func TestFactsText(t *testing.T) {
	f := newFixture(t, emptyRoot(t))
	var m strings.Builder
	for i := range 8 {
		m.WriteString("[x" + string(rune('a'+i)) + "]\nurl = \"https://github.com/o/r\"\nif_file = \"/flag" + string(rune('a'+i)) + "\"\n")
	}
	f.write(rootfs.VendorManifest, m.String())
	first := f.mustRun("facts")
	for range 5 {
		if again := f.mustRun("facts"); again != first {
			t.Fatalf("facts output changes between runs:\n%s\n---\n%s", first, again)
		}
	}
	for _, bad := range []string{"dmi             :", "()", "dmi  :"} {
		if strings.Contains(first, bad) {
			t.Errorf("facts on an empty root contains %q:\n%s", bad, first)
		}
	}
	if !strings.Contains(first, "not read from --root") {
		t.Errorf("facts under --root does not say virtualization is the host's:\n%s", first)
	}
	if i, j := strings.Index(first, "/flaga"), strings.Index(first, "/flagh"); i < 0 || j < i {
		t.Errorf("files not in sorted order:\n%s", first)
	}
}

// "(are you root?)" only where it can be the answer.
func TestLockErrorHintOnlyForNonRoot(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	f.write(rootfs.StateDir, "a file where the state directory belongs")
	_, stderr, code := f.run("update")
	if code != ExitFailure {
		t.Errorf("exit %d, want %d", code, ExitFailure)
	}
	root := os.Geteuid() == 0
	if strings.Contains(stderr, "root") == root {
		t.Errorf("euid %d: stderr %q", os.Geteuid(), stderr)
	}
}

func TestRootHelpExitsZero(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage:") {
		t.Errorf("--help: exit %d, stdout %q", code, out.String())
	}
}

func execCommand(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// Shell completion offers the manifests' extension names (cobra's
// __complete is what the bash/zsh/fish scripts call).
func TestCompletionOffersExtensionNames(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	f.write(rootfs.StateDir+"/state.json", `{"extensions":{"gone":{"name":"gone","image":"sysext-gone","version":"1"}}}`)
	for _, tt := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"install", "h"}, []string{"hello"}, []string{"qemu-guest-agent", "gone"}},
		{[]string{"install", ""}, []string{"hello", "open-vm-tools", "thinkpad-tools"}, []string{"gone"}},
		{[]string{"remove", "hello", ""}, []string{"gone", "open-vm-tools"}, []string{"hello"}},
		{[]string{"explain", "q"}, []string{"qemu-guest-agent"}, nil},
		{[]string{"explain", "hello", ""}, nil, []string{"hello", "open-vm-tools"}},
		{[]string{"hold", "g"}, []string{"gone"}, []string{"hello"}},
		{[]string{"pin", "o"}, []string{"open-vm-tools"}, nil},
		{[]string{"pin", "hello", ""}, nil, []string{"hello", "gone"}},
	} {
		out, _, _ := f.run(append([]string{"__complete"}, tt.args...)...)
		got := strings.Fields(out)
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("complete %v = %v, lacks %s", tt.args, got, w)
			}
		}
		for _, n := range tt.not {
			if slices.Contains(got, n) {
				t.Errorf("complete %v = %v, offers %s", tt.args, got, n)
			}
		}
	}
}

// Every --json list is `[]` when empty, never `null` (jq '.[]' fails on null).
func TestEmptyJSONListsAreArrays(t *testing.T) {
	f := newFixture(t, emptyRoot(t))
	for _, args := range [][]string{{"list", "--offline", "--json"}, {"history", "--json"}, {"status", "--offline", "--json"}} {
		out, _, _ := f.run(args...)
		if strings.Contains(out, "null") && !strings.Contains(out, `"daemon": null`) {
			t.Errorf("%v prints null:\n%s", args, out)
		}
	}
}
