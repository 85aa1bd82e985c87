package nsroot

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const envProbe = "NSROOT_TEST_PROBE"

// TestRunIsolatesMounts checks the body sees a fresh tmpfs on /run and a
// shared mount tree, and that nothing it mounts or writes reaches the host.
func TestRunIsolatesMounts(t *testing.T) {
	probe := os.Getenv(envProbe)
	if probe == "" {
		probe = "nsroot-probe-" + filepath.Base(t.TempDir())
		t.Setenv(envProbe, probe)
	}
	hostRun := MountsUnder(t, "/run")
	scratch := t.TempDir()

	Run(t, func(t *testing.T) {
		var st unix.Statfs_t
		if err := unix.Statfs("/run", &st); err != nil {
			t.Fatal(err)
		}
		if st.Type != unix.TMPFS_MAGIC {
			t.Errorf("/run filesystem type = %#x, want tmpfs %#x", st.Type, unix.TMPFS_MAGIC)
		}
		entries, err := os.ReadDir("/run")
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("/run in namespace has %d entries, want a fresh empty tmpfs", len(entries))
		}
		if err := os.WriteFile(filepath.Join("/run", probe), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", scratch, "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { UnmountUnder(t, scratch) })
		if got := MountsUnder(t, scratch); len(got) != 1 {
			t.Errorf("mounts under %s = %v, want one", scratch, got)
		}
		if !strings.Contains(mountinfoLine(t, "/"), "shared:") {
			t.Errorf("/ is not shared in the namespace: %s", mountinfoLine(t, "/"))
		}
	})
	if os.Getenv(envTest) != "" {
		return // the child: the host checks belong to the parent
	}
	if _, err := os.Stat(filepath.Join("/run", probe)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("probe written in the namespace is visible on the host /run: %v", err)
	}
	if got := MountsUnder(t, scratch); len(got) != 0 {
		t.Errorf("mount made in the namespace is visible on the host: %v", got)
	}
	if got := MountsUnder(t, "/run"); !equal(got, hostRun) {
		t.Errorf("host mounts under /run = %v, want unchanged %v", got, hostRun)
	}
}

func mountinfoLine(t *testing.T, mp string) string {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if f := strings.Fields(line); len(f) > 4 && f[4] == mp {
			return line
		}
	}
	return ""
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// TestHelperOutcome is driven by TestRunReportsChildOutcome only.
func TestHelperOutcome(t *testing.T) {
	outcome := os.Getenv("NSROOT_HELPER_OUTCOME")
	if outcome == "" {
		t.Skip("helper for TestRunReportsChildOutcome")
	}
	Run(t, func(t *testing.T) {
		switch outcome {
		case "fail":
			t.Error("failing on purpose")
		case "skip":
			t.Skip("skipping on purpose")
		}
	})
}

// TestRunReportsChildOutcome checks the parent reports what happened in the
// namespace: pass, fail and skip, never a PASS for a body that did not pass.
func TestRunReportsChildOutcome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs tests in a mount namespace")
	}
	tests := []struct {
		outcome  string
		wantExit bool
		want     string
	}{
		{"pass", false, "--- PASS: TestHelperOutcome"},
		{"fail", true, "--- FAIL: TestHelperOutcome"},
		{"skip", false, "--- SKIP: TestHelperOutcome"},
	}
	for _, tt := range tests {
		t.Run(tt.outcome, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperOutcome$", "-test.v=true", "-test.count=1")
			cmd.Env = append(os.Environ(), "NSROOT_HELPER_OUTCOME="+tt.outcome)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if gotExit := err != nil; gotExit != tt.wantExit {
				t.Errorf("exit error = %v, want error %v\n%s", err, tt.wantExit, out.String())
			}
			// The last verdict line is the parent's own.
			if got := lastVerdict(out.String()); !strings.Contains(got, tt.want) {
				t.Errorf("parent verdict = %q, want %q\n%s", got, tt.want, out.String())
			}
			if tt.outcome == "fail" && !strings.Contains(out.String(), "failing on purpose") {
				t.Errorf("parent output lacks the child's failure message:\n%s", out.String())
			}
		})
	}
}

// lastVerdict is the last "--- " line: the parent's own result.
func lastVerdict(out string) string {
	last := ""
	for line := range strings.Lines(out) {
		if strings.HasPrefix(strings.TrimSpace(line), "--- ") {
			last = line
		}
	}
	return last
}

func TestRunPattern(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"top", "TestX", "^TestX$"},
		{"sub", "TestX/case_1", "^TestX$/^case_1$"},
		{"meta", "TestA.b", `^TestA\.b$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runPattern(tt.in); got != tt.want {
				t.Errorf("runPattern(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	if got, want := unescapeMountinfo(`/tmp/a\040b\134c`), `/tmp/a b\c`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A skip inside the namespace must surface with its reason on the first
// line of the parent's skip message: that line is what `make unit`'s skip
// summary shows.
func TestChildSkipReason(t *testing.T) {
	out := "=== RUN   TestX\n    x_test.go:10: built tree\n    x_test.go:12: SKIPPED (no Debian mirror): dial tcp\n--- SKIP: TestX (0.01s)\nPASS\n"
	if got, want := childSkipReason(out), "SKIPPED (no Debian mirror): dial tcp"; got != want {
		t.Errorf("childSkipReason = %q, want %q", got, want)
	}
	if got := childSkipReason("--- SKIP: TestX\n"); !strings.Contains(got, "without a reason") {
		t.Errorf("childSkipReason of a silent skip = %q", got)
	}
}
