//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BootOptions tunes Boot. The zero value boots a fresh copy of EnsureBase.
type BootOptions struct {
	// Base is the root to boot a copy of; nil means EnsureBase(t).
	Base *Base
	// Name is the machine name (and hostname); empty derives one from the
	// test name plus a random suffix.
	Name string
	// BootTimeout bounds the wait for systemd to finish booting; default 2m.
	BootTimeout time.Duration
	// LoopDevices is how many /dev/loopN nodes exist in the container from
	// early boot on; default 256. systemd-sysext needs them to mount images.
	// Loop devices are the host kernel's: whatever number the kernel hands
	// out (other containers and tests hold the low ones) must have a node
	// here, or systemd-sysext fails with "Device or resource busy".
	LoopDevices int
	// NspawnArgs are extra systemd-nspawn arguments, e.g. "--bind=/srv".
	NspawnArgs []string
	// FollowReboots boots the container again when it reboots by itself
	// (systemd-nspawn exits with status 133, which systemd-nspawn@.service
	// answers with RestartForceExitStatus=133), during a boot or while
	// waiting in WaitSelfReboot. Off, any exit of systemd-nspawn fails the
	// test, as before.
	FollowReboots bool
}

// nspawnRebooted is systemd-nspawn's exit status when the container
// rebooted (EXIT_FORCE_RESTART).
const nspawnRebooted = 133

// maxSelfReboots bounds FollowReboots: a container that keeps rebooting
// fails the test instead of looping for ever.
const maxSelfReboots = 12

// Container is a Debian root booted under systemd-nspawn with systemd as
// PID 1. Its files live on an overlay over the base, kept across Reboot and
// thrown away when the test ends.
type Container struct {
	name string
	opts BootOptions
	dir  string // temp dir holding the overlay layers and console logs
	root string // merged overlay: the container's /

	boots       int
	selfReboots int
	cmd         *exec.Cmd
	exited      chan struct{}
	leader      int
	console     string
}

// Boot starts a container on a fresh copy of the base and waits until
// systemd reports "running" or "degraded" (failed units are logged). The
// container is powered off when the test ends, its journal dumped first if
// the test failed; no process or mount outlives the test.
func Boot(t testing.TB, opts BootOptions) *Container {
	t.Helper()
	requireRoot(t)
	if opts.Base == nil {
		opts.Base = EnsureBase(t)
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 2 * time.Minute
	}
	if opts.LoopDevices == 0 {
		opts.LoopDevices = 256
	}
	if opts.Name == "" {
		opts.Name = machineName(t.Name())
	}
	c := &Container{name: opts.Name, opts: opts, dir: t.TempDir()}
	c.root = filepath.Join(c.dir, "root")
	upper, work := filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work")
	for _, d := range []string{c.root, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("creating %s: %v", d, err)
		}
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", opts.Base.Dir, upper, work)
	if err := syscall.Mount("overlay", c.root, "overlay", 0, data); err != nil {
		t.Fatalf("mounting overlay on %s: %v", c.root, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(c.root, 0); err != nil {
			t.Logf("unmounting %s: %v; detaching it", c.root, err)
			if err := syscall.Unmount(c.root, syscall.MNT_DETACH); err != nil {
				t.Errorf("detaching %s: %v", c.root, err)
			}
		}
	})
	c.writeLoopTmpfiles(t)
	c.maskContainerNoise(t)
	if opts.FollowReboots {
		c.shortenShutdown(t)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs(t)
		}
		c.stop(t)
		// nspawn cannot clean this up when /run is not a tmpfs.
		os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", c.name))
	})
	c.start(t)
	return c
}

// Name is the machine name, also the container's hostname.
func (c *Container) Name() string { return c.name }

// Root is the host path of the container's root directory. Files written
// under it are visible inside at once and survive Reboot.
func (c *Container) Root() string { return c.root }

// Leader is the host PID of the container's PID 1 (systemd) in this boot.
func (c *Container) Leader() int { return c.leader }

// Reboot powers the container off and boots it again on the same root, as
// an appliance reboot: files persist, /run and /dev start empty.
func (c *Container) Reboot(t testing.TB) {
	t.Helper()
	c.stop(t)
	c.start(t)
}

// machineName turns a test name into a valid, unique machine name.
func machineName(testName string) string {
	s := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9-]+`).ReplaceAllString(testName, "-"))
	s = strings.Trim(s, "-")
	if len(s) > 40 {
		s = s[:40]
	}
	var b [3]byte
	rand.Read(b[:])
	return "e2e-" + s + "-" + hex.EncodeToString(b[:])
}

// writeLoopTmpfiles makes systemd-tmpfiles create /dev/loopN nodes in early
// boot (before systemd-sysext.service). nspawn gives the container a private
// /dev without udev, so loop devices the kernel allocates have no node there
// and systemd-sysext cannot attach images.
func (c *Container) writeLoopTmpfiles(t testing.TB) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# Written by the sysextd e2e harness: loop nodes for systemd-sysext.\n")
	for i := range c.opts.LoopDevices {
		fmt.Fprintf(&b, "b! /dev/loop%d 0660 root disk - 7:%d\n", i, i)
	}
	path := filepath.Join(c.root, "etc/tmpfiles.d/sysextd-e2e-loop.conf")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("creating %s: %v", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

// shortenShutdown bounds how long systemd-shutdown waits for processes
// after SIGTERM (it follows DefaultTimeoutStopSec=, 90 s by default). A
// forced reboot (FailureAction=reboot-force) SIGTERMs sysextd in the middle
// of its start-up, whose merge and unit jobs finish rather than stop half
// way (a protected context), and under a manager already gone they never
// finish: each reboot would wait the full timeout before SIGKILL.
func (c *Container) shortenShutdown(t testing.TB) {
	t.Helper()
	path := filepath.Join(c.root, "etc/systemd/system.conf.d/e2e-follow-reboots.conf")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("creating %s: %v", filepath.Dir(path), err)
	}
	conf := "# Written by the sysextd e2e harness (FollowReboots).\n[Manager]\nDefaultTimeoutStopSec=5s\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

// maskContainerNoise masks units that can only fail in a container, so that a
// healthy boot reports "running" rather than "degraded": systemd-modules-load
// cannot use kmod without module access.
func (c *Container) maskContainerNoise(t testing.TB) {
	t.Helper()
	for _, unit := range []string{"systemd-modules-load.service"} {
		link := filepath.Join(c.root, "etc/systemd/system", unit)
		if err := os.Symlink("/dev/null", link); err != nil && !os.IsExist(err) {
			t.Fatalf("masking %s: %v", unit, err)
		}
	}
}

// SelfReboots is how many times the container rebooted by itself
// (FollowReboots) since it was first booted.
func (c *Container) SelfReboots() int { return c.selfReboots }

// WaitSelfReboot waits up to timeout for the container to reboot by itself
// (FollowReboots), boots it again and reports true; false when it stayed
// up for the whole timeout.
func (c *Container) WaitSelfReboot(t testing.TB, timeout time.Duration) bool {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(timeout):
		return false
	}
	if !c.rebootedItself() {
		c.failIfExited(t, "while up")
	}
	c.followReboot(t)
	c.start(t)
	return true
}

// rebootedItself reports whether systemd-nspawn exited because the
// container rebooted, with FollowReboots set.
func (c *Container) rebootedItself() bool {
	select {
	case <-c.exited:
		return c.opts.FollowReboots && c.cmd.ProcessState.ExitCode() == nspawnRebooted
	default:
		return false
	}
}

// followReboot counts a reboot the container did by itself and forgets
// the exited systemd-nspawn.
func (c *Container) followReboot(t testing.TB) {
	t.Helper()
	c.selfReboots++
	t.Logf("container %s rebooted by itself (systemd-nspawn exited %d; self reboot %d); booting it again", c.name, nspawnRebooted, c.selfReboots)
	if c.selfReboots > maxSelfReboots {
		t.Fatalf("container %s rebooted by itself %d times; console:\n%s", c.name, c.selfReboots, tail(c.readConsole(), 60))
	}
	c.cmd, c.leader = nil, 0
}

// start runs systemd-nspawn and waits for the boot to finish; with
// FollowReboots, a boot that ends in a reboot of its own is booted again.
func (c *Container) start(t testing.TB) {
	t.Helper()
	for !c.boot(t) {
		c.followReboot(t)
	}
}

// boot is one boot: it runs systemd-nspawn and waits until the boot
// finished (true) or, with FollowReboots, the container rebooted by itself
// first (false).
func (c *Container) boot(t testing.TB) bool {
	t.Helper()
	c.boots++
	c.console = filepath.Join(c.dir, fmt.Sprintf("console-%d.log", c.boots))
	out, err := os.Create(c.console)
	if err != nil {
		t.Fatalf("creating console log: %v", err)
	}
	defer out.Close()
	args := []string{
		"-b", "-D", c.root, "--machine", c.name,
		"--capability=all", "--bind=/dev/loop-control",
		// No systemd on the host: no machined, no scope unit, so neither
		// registration nor --property (it needs the host's bus) works.
		"--register=no", "--keep-unit", "--link-journal=no",
	}
	args = append(args, c.opts.NspawnArgs...)
	cmd := exec.Command("systemd-nspawn", args...)
	cmd.Stdout, cmd.Stderr = out, out
	// The unified cgroup hierarchy: this host's nspawn (252) would give a
	// legacy one, under which systemd >= 256 (forky's 262) refuses to boot
	// (docs/e2e.md).
	cmd.Env = []string{"PATH=" + guestPath, "SYSTEMD_LOG_COLOR=0", "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1"}
	// If the test binary dies, nspawn is told to stop the container.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting systemd-nspawn: %v", err)
	}
	c.cmd = cmd
	c.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(c.exited)
	}()

	deadline := time.Now().Add(c.opts.BootTimeout)
	for {
		c.leader = findLeader(cmd.Process.Pid)
		if c.leader != 0 {
			break
		}
		if c.rebootedItself() {
			return false
		}
		c.failIfExited(t, "before starting systemd")
		if time.Now().After(deadline) {
			t.Fatalf("no container PID 1 under nspawn %d after %s", cmd.Process.Pid, c.opts.BootTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	state := c.waitBooted(t, deadline)
	if state == "" {
		return false // rebooted by itself (FollowReboots)
	}
	t.Logf("container %s booted (%s) in %s, leader PID %d", c.name, state,
		time.Since(begin).Round(time.Millisecond), c.leader)
	if state == "degraded" {
		failed, _, _, _ := c.ExecContext(t.Context(), "systemctl", "--failed", "--no-legend", "--plain")
		t.Logf("failed units in %s:\n%s", c.name, strings.TrimSpace(failed))
	}
	c.ensureLoopNodes(t)
	return true
}

// findLeader returns the child of nspawn that is PID 1 of its own PID
// namespace, or 0.
func findLeader(nspawnPID int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var ppid int
		var nspid []string
		for _, line := range strings.Split(string(data), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "PPid":
				fmt.Sscan(strings.TrimSpace(v), &ppid)
			case "NSpid":
				nspid = strings.Fields(v)
			}
		}
		if ppid == nspawnPID && len(nspid) > 1 && nspid[len(nspid)-1] == "1" {
			return pid
		}
	}
	return 0
}

// waitBooted polls `systemctl is-system-running --wait` until the boot is
// over and returns the state; "" when the container rebooted by itself
// first (FollowReboots).
func (c *Container) waitBooted(t testing.TB, deadline time.Time) string {
	t.Helper()
	var last string
	for time.Now().Before(deadline) {
		if c.rebootedItself() {
			return ""
		}
		c.failIfExited(t, "while booting")
		ctx, cancel := context.WithDeadline(t.Context(), deadline)
		// A container that may reboot by itself is polled from outside its
		// PID namespace (execIn).
		stdout, stderr, _, _ := c.execIn(ctx, c.opts.FollowReboots, "systemctl", "is-system-running", "--wait")
		cancel()
		// "offline" means systemctl could not reach the manager yet.
		state := strings.TrimSpace(stdout)
		switch state {
		case "running", "degraded":
			return state
		case "stopping":
			if c.opts.FollowReboots {
				break // perhaps rebooting by itself: the exit tells
			}
			c.dumpLogs(t)
			t.Fatalf("container %s boot ended in state %q", c.name, state)
		case "maintenance":
			c.dumpLogs(t)
			t.Fatalf("container %s boot ended in state %q", c.name, state)
		}
		last = strings.TrimSpace(state + " " + stderr)
		time.Sleep(100 * time.Millisecond)
	}
	c.dumpLogs(t)
	t.Fatalf("container %s not booted after %s (last: %s)", c.name, c.opts.BootTimeout, last)
	return ""
}

// ensureLoopNodes creates any /dev/loopN the tmpfiles snippet did not.
func (c *Container) ensureLoopNodes(t testing.TB) {
	t.Helper()
	script := fmt.Sprintf(`for i in $(seq 0 %d); do [ -b /dev/loop$i ] || { mknod -m 0660 /dev/loop$i b 7 $i && echo $i; }; done`,
		c.opts.LoopDevices-1)
	made := c.MustExec(t, "sh", "-c", script)
	if made != "" {
		t.Logf("created loop nodes after boot: %s", strings.Join(strings.Fields(made), " "))
	}
}

func (c *Container) failIfExited(t testing.TB, when string) {
	t.Helper()
	select {
	case <-c.exited:
		t.Fatalf("systemd-nspawn exited %s (%v); console:\n%s", when, c.cmd.ProcessState, tail(c.readConsole(), 60))
	default:
	}
}

// stop powers the container off (systemctl poweroff, then SIGRTMIN+4 to
// PID 1 as machinectl would) and kills it if it has not stopped in time.
func (c *Container) stop(t testing.TB) {
	t.Helper()
	if c.cmd == nil {
		return
	}
	defer func() { c.cmd, c.leader = nil, 0 }()
	select {
	case <-c.exited:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	const sigRTMin = 34 // glibc's SIGRTMIN; systemd reads SIGRTMIN+4 as poweroff.
	if _, _, code, err := c.ExecContext(ctx, "systemctl", "poweroff", "--no-block"); err != nil || code != 0 {
		syscall.Kill(c.leader, syscall.Signal(sigRTMin+4))
	}
	select {
	case <-c.exited:
		return
	case <-time.After(30 * time.Second):
	}
	t.Logf("container %s still running 30s after poweroff; signalling PID 1", c.name)
	syscall.Kill(c.leader, syscall.Signal(sigRTMin+4))
	select {
	case <-c.exited:
		return
	case <-time.After(30 * time.Second):
	}
	t.Errorf("container %s did not power off in 60s; killing it\nconsole:\n%s", c.name, tail(c.readConsole(), 40))
	syscall.Kill(c.leader, syscall.SIGKILL)
	c.cmd.Process.Kill()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("systemd-nspawn %d still running after SIGKILL", c.cmd.Process.Pid)
	}
}

func (c *Container) readConsole() string {
	data, _ := os.ReadFile(c.console)
	return string(data)
}

// dumpLogs logs what is needed to understand a failure: failed units, the
// journal of this boot and the end of the console.
func (c *Container) dumpLogs(t testing.TB) {
	t.Helper()
	select {
	case <-c.exited:
		t.Logf("console of %s (exited):\n%s", c.name, tail(c.readConsole(), 80))
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	failed, _, _, _ := c.ExecContext(ctx, "systemctl", "--failed", "--no-legend", "--plain")
	journal, _, _, _ := c.ExecContext(ctx, "journalctl", "--no-pager", "-b", "-o", "short-precise", "-n", "300")
	t.Logf("failed units in %s:\n%s\njournal of %s (last 300 lines):\n%s", c.name, failed, c.name, journal)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ExecContext runs argv inside the container (all its namespaces, via
// nsenter) with a clean environment, and returns its output and exit code.
// err is set only when the command could not run to completion (nsenter
// missing, context done); a non-zero exit is not an error.
func (c *Container) ExecContext(ctx context.Context, argv ...string) (stdout, stderr string, code int, err error) {
	return c.execIn(ctx, false, argv...)
}

// execIn is ExecContext; outside, for a container that may reboot by
// itself, the command's parent is a shell that stays in the host's PID
// namespace (nsenter --no-fork) and forks it into the container's.
// systemd-shutdown SIGSTOPs every process of the container before it
// signals them; nsenter's own parent, seeing its child stop (it waits with
// WUNTRACED), stops itself on the host, the child's zombie is never
// reaped, and the reboot hangs. A shell without job control does not wait
// for stops, so it reaps the killed command and the reboot goes on.
func (c *Container) execIn(ctx context.Context, outside bool, argv ...string) (stdout, stderr string, code int, err error) {
	if c.leader == 0 {
		return "", "", -1, errors.New("container is not running")
	}
	args := []string{"-t", fmt.Sprint(c.leader), "-a"}
	if outside {
		// Not the shell's last command: it must fork, not exec.
		args = append(args, "--no-fork", "sh", "-c", `"$@"; r=$?; exit $r`, "sh")
	}
	args = append(args, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = []string{"PATH=" + guestPath, "LANG=C.UTF-8", "HOME=/root", "TERM=dumb", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	if runErr == nil {
		return out.String(), errb.String(), 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) && ctx.Err() == nil && exitErr.Exited() {
		return out.String(), errb.String(), exitErr.ExitCode(), nil
	}
	return out.String(), errb.String(), -1, fmt.Errorf("running %q in %s: %w", argv, c.name, runErr)
}

// Exec runs argv inside the container with a five-minute limit. It fails the
// test only when the command cannot be run at all; the exit code is returned.
func (c *Container) Exec(t testing.TB, argv ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	stdout, stderr, exitCode, err := c.ExecContext(ctx, argv...)
	if err != nil {
		t.Fatalf("%v; stderr: %s", err, stderr)
	}
	return stdout, stderr, exitCode
}

// MustExec is Exec for commands that must succeed: a non-zero exit fails the
// test with the stderr. It returns stdout.
func (c *Container) MustExec(t testing.TB, argv ...string) string {
	t.Helper()
	stdout, stderr, code := c.Exec(t, argv...)
	if code != 0 {
		t.Fatalf("%q in %s: exit %d\nstdout: %s\nstderr: %s", argv, c.name, code, stdout, stderr)
	}
	return stdout
}

// Journal returns the journal of this boot inside the container, only of unit
// when unit is not empty.
func (c *Container) Journal(t testing.TB, unit string) string {
	t.Helper()
	argv := []string{"journalctl", "--no-pager", "-b", "-o", "short-precise"}
	if unit != "" {
		argv = append(argv, "-u", unit)
	}
	stdout, _, _ := c.Exec(t, argv...)
	return stdout
}

// WaitExec runs argv inside the container until it exits 0 or timeout
// passes, and returns its last stdout. Use it for state that settles
// asynchronously (a Type=simple service writing its pid file, a daemon's
// first pass).
func (c *Container) WaitExec(t testing.TB, timeout time.Duration, argv ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		stdout, stderr, code := c.Exec(t, argv...)
		if code == 0 {
			return stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q in %s still exits %d after %s\nstdout: %s\nstderr: %s", argv, c.name, code, timeout, stdout, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
