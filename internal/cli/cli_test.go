package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/buildinfo"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

var update = flag.Bool("update", false, "rewrite golden files")

// copyRoot copies a fake sysfs root from testdata into a temporary
// directory and adds the sample vendor manifest.
func copyRoot(t *testing.T, name string) rootfs.Root {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join("../../testdata/roots", name)+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copying root: %v: %s", err, out)
	}
	root := rootfs.New(dir)
	data, err := os.ReadFile("../../testdata/manifests/vendor.toml")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(root.Path(rootfs.VendorManifest)), 0o755)
	if err := os.WriteFile(root.Path(rootfs.VendorManifest), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update once): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

var virtRE = regexp.MustCompile(`"virtualization": "[^"]*"`)

func TestFactsGolden(t *testing.T) {
	for _, name := range []string{"vmware", "rpi4", "lenovo", "kvm"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, copyRoot(t, name))
			out := f.mustRun("facts", "--json")
			// Virtualization is the running host's answer, not the tree's.
			out = virtRE.ReplaceAllString(out, `"virtualization": "HOST"`)
			golden(t, "facts-"+name+".json", []byte(out))
		})
	}
}

func TestListRecommendsFromRoot(t *testing.T) {
	f := newFixture(t, copyRoot(t, "vmware"))
	out := f.mustRun("list", "--offline", "--json")
	golden(t, "list-vmware.json", []byte(out))
	items := f.list("--offline")
	ovt := items["open-vm-tools"]
	if !ovt.Recommended || strings.Join(ovt.Reasons, ",") != "pci_id 15ad:0405" {
		t.Errorf("open-vm-tools = %+v, want recommended for pci_id 15ad:0405", ovt)
	}
	for _, n := range []string{"qemu-guest-agent", "raspi-firmware", "thinkpad-tools", "hello"} {
		if items[n].Recommended {
			t.Errorf("%s recommended on a VMware root: %v", n, items[n].Reasons)
		}
	}
	factsFile := filepath.Join(t.TempDir(), "facts.json")
	os.WriteFile(factsFile, []byte(`{"arch":"amd64","os":{"id":"debian","version_id":"13","version_codename":"trixie"},"virtualization":"vmware"}`), 0o644)
	items = f.list("--offline", "--facts", factsFile)
	if got := strings.Join(items["open-vm-tools"].Reasons, ","); got != "virt_env vmware" {
		t.Errorf("with --facts vmware, reasons = %q, want virt_env vmware", got)
	}
}

func TestExplain(t *testing.T) {
	f := newFixture(t, copyRoot(t, "lenovo"))
	out := f.mustRun("explain", "thinkpad-tools")
	if !strings.Contains(out, `YES dmi "lenovo:20W8S0K900"  (host: LENOVO:20W8S0K900)`) || !strings.Contains(out, "recommended: dmi") {
		t.Errorf("explain = %q", out)
	}
	out = f.mustRun("explain", "qemu-guest-agent", "--json")
	var ex api.Explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Recommended || len(ex.Checks) != 3 {
		t.Errorf("explain qemu-guest-agent = %+v, want 3 unmatched checks", ex)
	}
	if _, _, code := f.run("explain", "nope"); code != ExitUsage {
		t.Errorf("explain nope: exit %d, want %d", code, ExitUsage)
	}
}

func TestBrokenLocalManifest(t *testing.T) {
	f := newFixture(t, copyRoot(t, "vmware"))
	f.write(rootfs.LocalManifest, "[mine]\nurl = \"https://github.com/me/mine\"\nvirt_env = [ \"kvm\" \n")
	out, stderr, code := f.run("list", "--offline")
	if code != ExitUsage {
		t.Errorf("list exit = %d, want %d", code, ExitUsage)
	}
	if !strings.Contains(stderr, rootfs.LocalManifest+":3") {
		t.Errorf("stderr %q does not name %s line 3", stderr, rootfs.LocalManifest)
	}
	if !strings.Contains(out, "open-vm-tools") {
		t.Errorf("vendor entries not listed: %q", out)
	}
	before := snapshot(t, f.root)
	for _, args := range [][]string{{"install", "open-vm-tools"}, {"auto"}, {"remove", "hello"}, {"update"}} {
		_, stderr, code := f.run(args...)
		if code != ExitUsage || !strings.Contains(stderr, "refusing") {
			t.Errorf("%v: exit %d, stderr %q; want %d and a refusal", args, code, stderr, ExitUsage)
		}
	}
	if after := snapshot(t, f.root); after != before {
		t.Errorf("mutating verbs changed the root:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// snapshot lists every path under root.
func snapshot(t *testing.T, root rootfs.Root) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(root.Dir(), func(p string, info os.FileInfo, err error) error {
		if err == nil {
			b.WriteString(root.Rel(p) + "\n")
		}
		return nil
	})
	return b.String()
}

func TestUsageErrors(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"install", "nope", "hello"}, "unknown extension(s): nope"},
		{[]string{"remove"}, "requires at least 1 arg"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"list", "--bogus"}, "unknown flag"},
	}
	for _, tt := range tests {
		_, stderr, code := f.run(tt.args...)
		if code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, ExitUsage, tt.want)
		}
	}
}

func TestLegacySpellings(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	a := f.mustRun("-s", "--offline")
	b := f.mustRun("status", "--offline")
	if a != b || !strings.Contains(a, "qemu-guest-agent") {
		t.Errorf("-s output %q differs from status %q", a, b)
	}
	if got := translateLegacy([]string{"--root", "/x", "-i", "hello"}); strings.Join(got, " ") != "--root /x install hello" {
		t.Errorf("translateLegacy = %v", got)
	}
}

func TestNoBlock(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	release, err := store.Store{Root: f.root}.Lock(t.Context(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, stderr, code := f.run("update", "--no-block")
	if code != ExitFailure || !strings.Contains(stderr, "another sysextctl or sysextd") {
		t.Errorf("exit %d, stderr %q; want %d and the lock message", code, stderr, ExitFailure)
	}
	// Read-only verbs never wait for the lock.
	f.mustRun("list", "--offline")
}

// TestListOnline is the sources issue's contract: available versions for
// every entry with at most one API request each; a second list inside the
// freshness window makes no request at all; --refresh checks again, with
// no download, and a third check is answered by 304s.
func TestListOnline(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	names := []string{"open-vm-tools", "qemu-guest-agent", "raspi-firmware", "thinkpad-tools", "hello"}
	for i, n := range names {
		x := release.Ext{Package: n, Version: "1." + string(rune('0'+i)) + "-1", Spec: sqfs.Spec{Files: map[string]string{"usr/share/x": n}}}
		if n == "hello" {
			x.Repo = "sysext-template" // as testdata/manifests/vendor.toml says
		}
		f.publish(x)
	}
	f.gh.ResetStats()
	before := time.Now()
	items := f.list()
	after := time.Now()
	for i, n := range names {
		if want := "1." + string(rune('0'+i)) + "-1"; items[n].AvailableVersion != want {
			t.Errorf("%s available = %q, want %q", n, items[n].AvailableVersion, want)
		}
		if at := items[n].CheckedAt; at.Before(before) || at.After(after) {
			t.Errorf("%s checked_at = %v, want the time of this list (%v to %v)", n, at, before, after)
		}
	}
	st := f.gh.Stats()
	for repo, c := range st.APIByRepo {
		if c > 1 {
			t.Errorf("%d API requests for %s, want at most 1", c, repo)
		}
	}
	f.gh.ResetStats()
	if fresh := f.list(); fresh["hello"].AvailableVersion != items["hello"].AvailableVersion {
		t.Errorf("second list: available %q, want the cached %q", fresh["hello"].AvailableVersion, items["hello"].AvailableVersion)
	}
	if st = f.gh.Stats(); st.API != 0 || st.Downloads != 0 {
		t.Errorf("second list: %+v, want no request (fresh data)", st)
	}
	if fresh := f.list(); !fresh["hello"].CheckedAt.Equal(items["hello"].CheckedAt) {
		t.Errorf("answered from the snapshot, checked_at = %v, want the first check's %v (data age, not now)", fresh["hello"].CheckedAt, items["hello"].CheckedAt)
	}
	f.gh.ResetStats()
	first := items["hello"].CheckedAt
	items = f.list("--refresh")
	if st = f.gh.Stats(); st.API != len(names) || st.Downloads != 0 {
		t.Errorf("list --refresh: %+v, want %d API requests and no downloads", st, len(names))
	}
	if !items["hello"].CheckedAt.After(first) {
		t.Errorf("list --refresh: checked_at = %v, want later than the first check %v", items["hello"].CheckedAt, first)
	}
	f.gh.ResetStats()
	f.list("--refresh")
	if st = f.gh.Stats(); st.API != len(names) || st.NotModified != st.API || st.Downloads != 0 {
		t.Errorf("third list: %+v, want %d API requests all 304 and no downloads", st, len(names))
	}
	if items["hello"].AvailableVersion == "" {
		t.Error("second list lost the available version")
	}
	offline := f.list("--offline")
	if offline["hello"].AvailableVersion != items["hello"].AvailableVersion {
		t.Errorf("--offline available = %q, want the cached %q", offline["hello"].AvailableVersion, items["hello"].AvailableVersion)
	}

	// An entry added since the last check is looked up alone.
	f.publish(release.Ext{Package: "newcomer", Version: "7.0-1", Spec: sqfs.Spec{Files: map[string]string{"usr/share/x": "n"}}})
	f.write(rootfs.LocalManifest, "[newcomer]\nurl = \"https://github.com/SpamTagger/sysext-newcomer\"\n")
	f.gh.ResetStats()
	items = f.list()
	if st = f.gh.Stats(); st.API != 1 || st.APIByRepo["SpamTagger/sysext-newcomer"] != 1 {
		t.Errorf("list after a new entry: %+v, want one API request, for the new entry", st)
	}
	if items["newcomer"].AvailableVersion != "7.0-1" {
		t.Errorf("newcomer available = %q, want 7.0-1", items["newcomer"].AvailableVersion)
	}
}

func TestNetworkExitCodes(t *testing.T) {
	tests := []struct {
		name  string
		fault fakegithub.Fault
		want  string
	}{
		{"rate limit", fakegithub.FaultRateLimit, "rate limit"},
		{"too many", fakegithub.FaultTooMany, "rate limit"},
		{"server error", fakegithub.FaultServerError, "500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, copyRoot(t, "kvm"))
			f.publish(release.Ext{Package: "hello", Version: "1.0-1", Repo: "sysext-template"})
			f.gh.SetAPIFault(tt.fault)
			_, stderr, code := f.run("list")
			if code != ExitNetwork || !strings.Contains(stderr, tt.want) {
				t.Errorf("list: exit %d, stderr %q; want %d and %q", code, stderr, ExitNetwork, tt.want)
			}
			_, stderr, code = f.run("update", "--dry-run")
			if code != ExitOK {
				t.Errorf("update with nothing installed: exit %d (%s)", code, stderr)
			}
		})
	}
}

func TestRunWithoutArgsShowsHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("no args: exit %d, out %q", code, out.String())
	}
	out.Reset()
	if code := Run(context.Background(), []string{"--version"}, &out, &errb); code != 0 || !strings.Contains(out.String(), buildinfo.Version) {
		t.Errorf("--version: exit %d, out %q", code, out.String())
	}
}

// TestSilentServerEndsWithExit4 uses the default timeouts: a GitHub that
// accepts connections and never answers must end the run with exit 4 well
// within a minute.
func TestSilentServerEndsWithExit4(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED in -short: waits for the default stall timeout (about 20 s)")
	}
	f := newFixture(t, copyRoot(t, "kvm"))
	f.gh.SetAPIFault(fakegithub.FaultStall)
	// Nothing installed: update needs no network and must not wait.
	start := time.Now()
	if _, stderr, code := f.run("update", "qemu-guest-agent", "--dry-run"); code != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("update of a not-installed extension: exit %d after %s (%s)", code, time.Since(start), stderr)
	}
	start = time.Now()
	_, stderr, code := f.run("list")
	elapsed := time.Since(start)
	if code != ExitNetwork {
		t.Errorf("list against a silent server: exit %d (%s), want %d", code, stderr, ExitNetwork)
	}
	if elapsed > 60*time.Second {
		t.Errorf("list against a silent server took %s, want under 60 s", elapsed)
	}
	t.Logf("silent server: exit %d after %s", code, elapsed.Round(time.Second))
}

// TestSecondaryLimitExit4: a secondary rate limit (403 with Retry-After)
// is a rate limit, not a failure.
func TestSecondaryLimitExit4(t *testing.T) {
	f := newFixture(t, copyRoot(t, "kvm"))
	f.publish(release.Ext{Package: "hello", Version: "1.0-1", Repo: "sysext-template"})
	f.gh.SetSecondaryLimit(1000, 30*time.Second)
	_, stderr, code := f.run("list", "--refresh")
	if code != ExitNetwork || !strings.Contains(stderr, "rate limit") {
		t.Errorf("list: exit %d, stderr %q; want %d and a rate limit", code, stderr, ExitNetwork)
	}
}

// TestDrippingDownloadFailsFast (issue 9): a download host that sends one
// byte every 2 s must not hold the lock for a minute: with the default
// minimum throughput the install ends with exit 4 after about one 15 s
// window, and the lock is free again.
func TestDrippingDownloadFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED in -short: waits for the default throughput window (about 15 s)")
	}
	f := newFixture(t, copyRoot(t, "kvm"))
	f.publish(release.Ext{Package: "hello", Version: "1.0-1", Repo: "sysext-template", Spec: sqfs.Spec{Files: map[string]string{"usr/share/x": "x"}}})
	// The small assets are cached by a list first; then only the image drips.
	if it := f.list()["hello"]; it.AvailableVersion != "1.0-1" {
		t.Fatalf("list: available %q, want 1.0-1", it.AvailableVersion)
	}
	f.gh.SetFaults(fakegithub.Faults{Download: fakegithub.FaultDrip})
	start := time.Now()
	_, stderr, code := f.run("install", "hello")
	elapsed := time.Since(start)
	if code != ExitNetwork || !strings.Contains(stderr, "too slow") {
		t.Errorf("install from a dripping server: exit %d, stderr %q; want %d and too slow", code, stderr, ExitNetwork)
	}
	if elapsed > 30*time.Second {
		t.Errorf("install from a dripping server took %s, want about 15 s", elapsed)
	}
	if _, stderr, code := f.run("remove", "hello", "--no-block"); code != 0 {
		t.Errorf("the lock is still held after the failed install: exit %d (%s)", code, stderr)
	}
	t.Logf("dripping server: exit %d after %s", code, elapsed.Round(time.Second))
}
