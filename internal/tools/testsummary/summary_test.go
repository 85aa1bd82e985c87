package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// stream builds `go test -json` lines.
func stream(t *testing.T, evs ...event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func out(pkg, test, text string) event {
	return event{Action: "output", Package: pkg, Test: test, Output: text}
}

const pkgA = "github.com/spamtagger/sysextd/internal/merge"

func TestSkipsAreCountedWithReasons(t *testing.T) {
	in := stream(t,
		event{Action: "start", Package: pkgA},
		event{Action: "run", Package: pkgA, Test: "TestParse"},
		out(pkgA, "TestParse", "=== RUN   TestParse\n"),
		out(pkgA, "TestParse", "--- PASS: TestParse (0.00s)\n"),
		event{Action: "pass", Package: pkgA, Test: "TestParse"},
		event{Action: "run", Package: pkgA, Test: "TestRefresh"},
		out(pkgA, "TestRefresh", "=== RUN   TestRefresh\n"),
		out(pkgA, "TestRefresh", "    nsroot.go:51: needs root: mounts a tmpfs on /run in a private mount namespace\n"),
		out(pkgA, "TestRefresh", "--- SKIP: TestRefresh (0.00s)\n"),
		event{Action: "skip", Package: pkgA, Test: "TestRefresh"},
		event{Action: "run", Package: pkgA, Test: "TestUnmerge"},
		out(pkgA, "TestUnmerge", "    nsroot.go:51: needs root: mounts a tmpfs on /run in a private mount namespace\n"),
		event{Action: "skip", Package: pkgA, Test: "TestUnmerge"},
		out(pkgA, "", "ok  \t"+pkgA+"\t0.10s\n"),
		event{Action: "pass", Package: pkgA, Elapsed: 0.1},
	)
	var b bytes.Buffer
	s := newSummary(&b, false, nil)
	if err := s.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if !s.print() {
		t.Errorf("print() = false for a run without failures")
	}
	got := b.String()
	for _, want := range []string{
		"ok   " + pkgA + " 0.10s  (2 SKIPPED)",
		"tests: 1 passed, 0 failed, 2 skipped",
		"SKIPPED 2 test(s), which did not run:",
		"2 x needs root: mounts a tmpfs on /run in a private mount namespace",
		"internal/merge.TestRefresh, internal/merge.TestUnmerge",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	// A package with skipped tests never shows a bare "ok".
	for _, l := range strings.Split(got, "\n") {
		if strings.HasPrefix(l, "ok") && !strings.Contains(l, "SKIPPED") {
			t.Errorf("bare ok line for a package with skips: %q", l)
		}
	}
}

func TestFailuresPrintTheirOutputAndFail(t *testing.T) {
	in := stream(t,
		event{Action: "run", Package: pkgA, Test: "TestBad"},
		out(pkgA, "TestBad", "=== RUN   TestBad\n"),
		out(pkgA, "TestBad", "    x_test.go:9: got 1, want 2\n"),
		out(pkgA, "TestBad", "--- FAIL: TestBad (0.00s)\n"),
		event{Action: "fail", Package: pkgA, Test: "TestBad"},
		event{Action: "fail", Package: pkgA, Elapsed: 0.2},
	)
	var b bytes.Buffer
	s := newSummary(&b, false, nil)
	if err := s.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if s.print() {
		t.Errorf("print() = true for a run with a failing test")
	}
	got := b.String()
	for _, want := range []string{"x_test.go:9: got 1, want 2", "FAIL " + pkgA, "FAILED " + pkgA + " TestBad", "1 failed"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestBuildFailureAndEmptyInputFail(t *testing.T) {
	for name, in := range map[string]string{
		"build": stream(t,
			event{Action: "build-output", ImportPath: pkgA + " [test]", Output: "x.go:1: syntax error\n"},
			event{Action: "build-fail", ImportPath: pkgA + " [test]"},
			event{Action: "fail", Package: pkgA}),
		"empty": "",
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			s := newSummary(&b, false, nil)
			if err := s.read(strings.NewReader(in)); err != nil {
				t.Fatal(err)
			}
			if s.print() {
				t.Errorf("print() = true:\n%s", b.String())
			}
		})
	}
}

func TestSkipReason(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"skip message", []string{"=== RUN   TestX\n", "    a_test.go:3: needs root: x\n", "--- SKIP: TestX (0.00s)\n"}, "needs root: x"},
		{"log before skip", []string{"    a.go:3: built image\n", "    a.go:9: SKIPPED (no Debian mirror): dial\n"}, "SKIPPED (no Debian mirror): dial"},
		{"silent", []string{"--- SKIP: TestX (0.00s)\n"}, "(no reason given)"},
	} {
		if got := skipReason(tc.lines); got != tc.want {
			t.Errorf("%s: skipReason = %q, want %q", tc.name, got, tc.want)
		}
	}
}
