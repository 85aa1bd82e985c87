// Package nsroot runs a root integration test (SPEC §13 tier 2) in a private
// mount namespace with its own tmpfs on /run, the setting in which
// `systemd-sysext --root=DIR refresh` works outside a container, without
// wrapping the whole `go test` run.
//
//	func TestRefresh(t *testing.T) {
//		nsroot.Run(t, func(t *testing.T) {
//			root := nsroot.NewRoot(t)
//			...
//		})
//	}
//
// Run re-executes the test binary for this one test under
// `unshare --mount --propagation private`; inside, the child makes its own
// copy of the mount tree shared again (systemd-sysext needs shared
// propagation to hand its overlay back from its helper's namespace), mounts a
// tmpfs on /run and runs the body. Nothing mounted there is visible on the
// host, and everything disappears when the child exits.
package nsroot

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Environment markers the parent hands to the re-executed child.
const (
	envTest  = "NSROOT_TEST"       // the test name the child is to run inside
	envNonce = "NSROOT_NONCE"      // printed by the child when the body passed
	envMntNS = "NSROOT_PARENT_MNT" // the parent's mount namespace, which the child must not share
)

// Run runs body inside a private mount namespace with a tmpfs on /run.
// It skips the test when not run as root. In the parent process it re-runs
// the current test in a child process and reports the child's outcome: the
// test fails when the child failed or did not report that the body ran to
// completion, and is skipped when the body skipped. Call Run from a top-level
// test, once, and put all of the test inside body.
func Run(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs on /run in a private mount namespace")
	}
	if os.Getenv(envTest) == t.Name() {
		runChild(t, body)
		return
	}
	runParent(t)
}

func runParent(t *testing.T) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("tier-2 test needs unshare(1) from util-linux: %v", err)
	}
	mntns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatalf("reading own mount namespace: %v", err)
	}
	nonceBytes := make([]byte, 16)
	_, _ = rand.Read(nonceBytes)
	nonce := hex.EncodeToString(nonceBytes)

	args := []string{"--mount", "--propagation", "private", "--", os.Args[0],
		"-test.run=" + runPattern(t.Name()), "-test.v=true", "-test.count=1"}
	cmd := exec.CommandContext(t.Context(), unshare, args...)
	cmd.Env = append(os.Environ(), envTest+"="+t.Name(), envNonce+"="+nonce, envMntNS+"="+mntns)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	runErr := cmd.Run()
	output := out.String()

	switch {
	case runErr != nil:
		t.Fatalf("in mount namespace: %v\n%s", runErr, output)
	case strings.Contains(output, passMarker(nonce)):
		t.Logf("in mount namespace:\n%s", output)
	case strings.Contains(output, skipMarker(nonce)):
		// The reason comes first, so that a summary of skips (make unit) shows it.
		t.Skipf("%s (in the mount namespace)\n%s", childSkipReason(output), output)
	default:
		t.Fatalf("in mount namespace: the test body did not report completion\n%s", output)
	}
}

// runPattern anchors every level of a (sub)test name for -test.run.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

var logLine = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: (.*)$`)

// childSkipReason is the last message the child logged before its
// "--- SKIP" line: the reason it gave t.Skip.
func childSkipReason(output string) string {
	reason := "the test body skipped without a reason"
	for line := range strings.Lines(output) {
		line = strings.TrimRight(line, "\n")
		if m := logLine.FindStringSubmatch(line); m != nil {
			reason = m[1]
		}
		if strings.HasPrefix(strings.TrimSpace(line), "--- SKIP") {
			break
		}
	}
	return reason
}

func passMarker(nonce string) string { return "nsroot: body passed " + nonce }
func skipMarker(nonce string) string { return "nsroot: body skipped " + nonce }

func runChild(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	nonce := os.Getenv(envNonce)
	mntns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatalf("reading own mount namespace: %v", err)
	}
	if parent := os.Getenv(envMntNS); parent == "" || parent == mntns {
		t.Fatalf("refusing to mount: still in the parent's mount namespace %s", mntns)
	}
	// Registered first, so it runs last: after the body's own cleanups.
	t.Cleanup(func() {
		switch {
		case t.Failed():
		case t.Skipped():
			fmt.Println(skipMarker(nonce))
		default:
			fmt.Println(passMarker(nonce))
		}
	})
	// unshare --propagation private cut every peer link with the host; making
	// the copy shared again creates peer groups that live only here.
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		t.Fatalf("making / shared in the namespace: %v", err)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		t.Fatalf("mounting tmpfs on /run: %v", err)
	}
	body(t)
}
