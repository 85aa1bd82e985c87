package reliability

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/failpoint"
	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/merge"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
	"github.com/spamtagger/sysextd/internal/testutil/nsroot"
	"github.com/spamtagger/sysextd/internal/testutil/release"
	"github.com/spamtagger/sysextd/internal/testutil/sqfs"
)

// The manifest every scenario uses: alpha and beta conflict; gamma is
// recommended by a flag file (for the daemon's auto cycle).
const manifest = `[alpha]
url = "https://github.com/SpamTagger/sysext-alpha"
conflicts = ["beta"]

[beta]
url = "https://github.com/SpamTagger/sysext-beta"

[gamma]
url = "https://github.com/SpamTagger/sysext-gamma"
if_file = "/var/lib/flag-gamma"
`

const (
	alpha1 = "1.0-1"
	alpha2 = "1.0-2"
	beta1  = "2.0-1"
	gamma1 = "3.0-1"
)

// servers are two GitHub stand-ins: old has alpha 1.0-1, beta and gamma;
// next also has alpha 1.0-2 (an update).
type servers struct{ old, next *fakegithub.Server }

func newServers(t *testing.T) servers {
	t.Helper()
	s := servers{old: fakegithub.New(), next: fakegithub.New()}
	t.Cleanup(s.old.Close)
	t.Cleanup(s.next.Close)
	ext := func(pkg, version string, at time.Time) release.Ext {
		// Some bulk, so that a download and a refresh take long enough
		// for a random kill to land inside them.
		bulk := strings.Repeat(pkg+version+"\n", 64<<10)
		return release.Ext{Package: pkg, Version: version, PublishedAt: at, Spec: sqfs.Spec{Files: map[string]string{
			"usr/share/" + pkg + "/version": version,
			"usr/share/" + pkg + "/bulk":    bulk,
			// etc/ payload: copied to the host by the payload phase, so a
			// kill there must be undone too.
			"etc/" + pkg + "/version": version,
		}}}
	}
	base := time.Now().Add(-time.Hour)
	for _, srv := range []*fakegithub.Server{s.old, s.next} {
		release.Publish(t, srv, ext("alpha", alpha1, base))
		release.Publish(t, srv, ext("beta", beta1, base))
		release.Publish(t, srv, ext("gamma", gamma1, base))
	}
	release.Publish(t, s.next, ext("alpha", alpha2, base.Add(time.Minute)))
	return s
}

// bins builds sysextctl and sysextd with failpoints once per test process.
type bins struct{ ctl, daemon string }

func buildBins(t *testing.T) bins {
	t.Helper()
	if !failpointsBuildable() {
		t.Fatal("cannot find the module root to build the binaries")
	}
	dir := t.TempDir()
	b := bins{ctl: filepath.Join(dir, "sysextctl"), daemon: filepath.Join(dir, "sysextd")}
	cmd := exec.Command("go", "build", "-tags", "failpoints", "-o", dir+"/", "./cmd/sysextctl", "./cmd/sysextd")
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building with failpoints: %v\n%s", err, out)
	}
	return b
}

func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return ""
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func failpointsBuildable() bool { return moduleRoot() != "" }

// world is one throwaway root driven through the real binaries.
type world struct {
	t    *testing.T
	root rootfs.Root
	bins bins
	srv  servers
}

func newWorld(t *testing.T, b bins, srv servers) *world {
	t.Helper()
	w := &world{t: t, root: nsroot.NewRoot(t), bins: b, srv: srv}
	p := w.root.Path(rootfs.VendorManifest)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// outcome of one process run.
type outcome struct {
	code           int
	killed         bool
	stdout, stderr string
	took           time.Duration
}

// start runs bin with args against the world's root and api, with the
// failpoint armed when fp is set; killAfter > 0 kills its whole process
// group (as systemd's KillMode=control-group would) after that long.
func (w *world) start(bin, api, fp string, killAfter time.Duration, args ...string) outcome {
	w.t.Helper()
	var all []string
	if bin == w.bins.ctl {
		all = append([]string{"--root", w.root.Dir(), "--github-api", api}, args...)
	} else {
		all = append([]string{"--root", w.root.Dir()}, args...)
	}
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), failpoint.Env+"="+fp, "SYSEXT_GITHUB_API="+api, "GITHUB_TOKEN=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	if killAfter > 0 {
		select {
		case err = <-done:
		case <-time.After(killAfter):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			err = <-done
		}
	} else {
		err = <-done
	}
	o := outcome{stdout: out.String(), stderr: errb.String(), took: time.Since(begin)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		o.killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
		o.code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	if o.killed {
		// The group is gone, but a systemd-sysext it started may have been
		// in another group; wait until none runs under this root.
		w.waitNoSysext()
	}
	return o
}

// ctl runs sysextctl to completion and fails the test on a non-zero exit.
func (w *world) ctl(api string, args ...string) outcome {
	w.t.Helper()
	o := w.start(w.bins.ctl, api, "", 0, args...)
	if o.code != 0 {
		w.t.Fatalf("sysextctl %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, o.code, o.stdout, o.stderr)
	}
	return o
}

func (w *world) waitNoSysext() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		busy := false
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte("systemd-sysext")) && bytes.Contains(b, []byte(w.root.Dir())) {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.t.Fatal("a systemd-sysext for this root still runs 30 s after the kill")
}

// versions is what the world holds: extension name -> installed version.
type versions map[string]string

func (v versions) String() string {
	var parts []string
	for _, n := range []string{"alpha", "beta", "gamma"} {
		if v[n] != "" {
			parts = append(parts, n+"="+v[n])
		}
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, " ")
}

// consistent checks every invariant of a settled store and returns what
// is installed. It reports violations as errors (one per broken rule).
func (w *world) consistent() (versions, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	st := store.Store{Root: w.root}
	state, err := st.LoadState()
	if err != nil {
		return nil, err
	}
	if state.Pending != nil {
		bad("an intent is still pending: %+v", *state.Pending)
	}
	// No stray file in any scanned directory or in the store's own.
	for _, dir := range []string{rootfs.EtcExtensionsDir, rootfs.RunExtensionsDir, rootfs.StateDir + "/staging", rootfs.StateDir + "/backup"} {
		if entries, _ := os.ReadDir(w.root.Path(dir)); len(entries) > 0 {
			bad("%s holds %v", dir, names(entries))
		}
	}
	entries, _ := os.ReadDir(w.root.Path(rootfs.ExtensionsDir))
	onDisk := map[string]bool{}
	for _, e := range entries {
		img, ok := strings.CutSuffix(e.Name(), ".raw")
		if !ok || strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			bad("stray %s in %s", e.Name(), rootfs.ExtensionsDir)
			continue
		}
		onDisk[img] = true
	}
	got := versions{}
	for name, r := range state.Extensions {
		if !onDisk[r.Image] {
			bad("state records %s %s but %s.raw is not in the store", name, r.Version, r.Image)
			continue
		}
		delete(onDisk, r.Image)
		path := st.ImagePath(r.Image)
		info, err := image.Inspect(path)
		if err != nil {
			bad("%s: %v", path, err)
			continue
		}
		if v := info.Fields["PACKAGE_VERSION"]; v != r.Version {
			bad("state says %s %s, the image says %s", name, r.Version, v)
		}
		if d := digest(path); d != r.Digest {
			bad("state says %s digest %s, the image is %s", name, r.Digest, d)
		}
		got[name] = r.Version
	}
	for img := range onDisk {
		bad("%s.raw is in the store but not in the state", img)
	}
	// Exactly what is installed is merged, at the recorded versions.
	merged, err := (&merge.Sysext{Root: w.root}).Merged(context.Background())
	if err != nil {
		return nil, err
	}
	var want []string
	for name := range got {
		want = append(want, "sysext-"+name)
	}
	slices.Sort(want)
	if !slices.Equal(merged, want) {
		bad("merged %v, installed %v", merged, want)
	}
	for name, v := range got {
		b, err := os.ReadFile(w.root.Path("/usr/share/" + name + "/version"))
		if err != nil || string(b) != v {
			bad("merged /usr/share/%s/version = %q (%v), state says %s", name, b, err, v)
		}
	}
	// The etc/ payload agrees: each installed extension's file at its
	// version, nothing of the others, no temporary file, no journal.
	for _, name := range []string{"alpha", "beta", "gamma"} {
		dir := w.root.Path("/etc/" + name)
		if v, ok := got[name]; ok {
			if b, err := os.ReadFile(dir + "/version"); err != nil || string(b) != v {
				bad("/etc/%s/version = %q (%v), state says %s", name, b, err, v)
			}
		} else if _, err := os.Lstat(dir); err == nil {
			bad("/etc/%s exists, but %s is not installed", name, name)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 1 {
			bad("/etc/%s holds %v, want only version", name, names(entries))
		}
	}
	if _, err := os.Lstat(w.root.Path(rootfs.StateDir + "/payload-undo.jsonl")); err == nil {
		bad("the payload journal survived the recovery")
	}
	release, err := st.Lock(context.Background(), false, nil)
	if err != nil {
		bad("lock not free: %v", err)
	} else {
		release()
	}
	return got, errors.Join(errs...)
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func digest(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
