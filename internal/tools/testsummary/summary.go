package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json), including the
// build events Go 1.24 added.
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Elapsed    float64
	Output     string
}

type skip struct {
	pkg, test, reason string
}

type pkgResult struct {
	pkg     string
	outcome string // ok, FAIL, no tests
	elapsed float64
	skipped int
}

// summary accumulates the events of one run.
type summary struct {
	out     io.Writer
	verbose bool
	logName string // where the full output went, for the closing hint
	// progress, when set, selects the output lines printed as they arrive
	// (verbose prints them all).
	progress *regexp.Regexp
	log      io.Writer

	output  map[string][]string // pkg+"\x00"+test -> output lines so far
	passed  int
	failed  []string
	skips   []skip
	pkgs    []pkgResult
	pkgSkip map[string]int
	builds  []string // packages whose build failed
	events  int
}

func newSummary(out io.Writer, verbose bool, log io.Writer) *summary {
	return &summary{out: out, verbose: verbose, log: log, output: map[string][]string{}, pkgSkip: map[string]int{}}
}

// read consumes the event stream. Lines that are not JSON (a go vet or
// linker message printed by an older go) are passed through.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(s.out, string(line))
			s.writeLog(string(line) + "\n")
			continue
		}
		s.handle(e)
	}
	return sc.Err()
}

func (s *summary) writeLog(text string) {
	if s.log != nil {
		io.WriteString(s.log, text)
	}
}

func (s *summary) handle(e event) {
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
		s.writeLog(e.Output)
	case "build-fail":
		s.builds = append(s.builds, e.ImportPath)
	case "output":
		s.writeLog(e.Output)
		if s.verbose || s.progress != nil && s.progress.MatchString(e.Output) {
			fmt.Fprint(s.out, e.Output)
		}
		s.output[key] = append(s.output[key], e.Output)
	case "pass", "fail", "skip":
		s.events++
		if e.Test == "" {
			s.finishPackage(e)
			return
		}
		lines := s.output[key]
		delete(s.output, key)
		switch e.Action {
		case "pass":
			s.passed++
		case "fail":
			s.failed = append(s.failed, e.Package+" "+e.Test)
			if !s.verbose && s.progress == nil {
				fmt.Fprint(s.out, strings.Join(lines, ""))
			}
		case "skip":
			s.skips = append(s.skips, skip{pkg: e.Package, test: e.Test, reason: skipReason(lines)})
			s.pkgSkip[e.Package]++
		}
	}
}

func (s *summary) finishPackage(e event) {
	key := e.Package + "\x00"
	lines := s.output[key]
	delete(s.output, key)
	r := pkgResult{pkg: e.Package, elapsed: e.Elapsed, skipped: s.pkgSkip[e.Package]}
	switch e.Action {
	case "pass":
		r.outcome = "ok"
	case "skip":
		r.outcome = "no tests"
	default:
		r.outcome = "FAIL"
		if !s.verbose {
			// A panic, a TestMain failure or a timeout: what the package printed
			// outside any test.
			for _, l := range lines {
				if !strings.HasPrefix(l, "FAIL\t") && l != "FAIL\n" {
					fmt.Fprint(s.out, l)
				}
			}
		}
	}
	s.pkgs = append(s.pkgs, r)
	if r.outcome == "no tests" {
		return
	}
	line := fmt.Sprintf("%-4s %s %.2fs", r.outcome, r.pkg, r.elapsed)
	if r.skipped > 0 {
		line += fmt.Sprintf("  (%d SKIPPED)", r.skipped)
	}
	fmt.Fprintln(s.out, line)
}

var (
	// "    file_test.go:12: message" as the testing package prints a log line.
	logPrefix = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: ?`)
	frameLine = regexp.MustCompile(`^\s*(=== (RUN|PAUSE|CONT|NAME)|--- (SKIP|PASS|FAIL)):?`)
)

// skipReason is the first line the skipped test logged: the t.Skip message,
// or the last thing it logged before skipping.
func skipReason(lines []string) string {
	var logged []string
	for _, l := range lines {
		if frameLine.MatchString(l) {
			continue
		}
		l = strings.TrimSpace(logPrefix.ReplaceAllString(l, ""))
		if l != "" {
			logged = append(logged, l)
		}
	}
	if len(logged) == 0 {
		return "(no reason given)"
	}
	reason := logged[0]
	for _, l := range logged {
		// t.Skip is the last call a skipped test makes; prefer a line that
		// says it skips over an earlier t.Log.
		if strings.Contains(strings.ToLower(l), "skip") || strings.HasPrefix(l, "needs ") {
			reason = l
			break
		}
	}
	const max = 160
	if len(reason) > max {
		reason = reason[:max] + "..."
	}
	return reason
}

// print writes the closing summary and reports whether the run passed.
func (s *summary) print() bool {
	w := s.out
	fmt.Fprintln(w)
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped", s.passed, len(s.failed), len(s.skips))
	if len(s.builds) > 0 {
		fmt.Fprintf(w, "; %d package(s) did not build", len(s.builds))
	}
	fmt.Fprintln(w)
	if len(s.skips) > 0 {
		byReason := map[string][]skip{}
		for _, sk := range s.skips {
			byReason[sk.reason] = append(byReason[sk.reason], sk)
		}
		reasons := make([]string, 0, len(byReason))
		for r := range byReason {
			reasons = append(reasons, r)
		}
		sort.Slice(reasons, func(i, j int) bool {
			if len(byReason[reasons[i]]) != len(byReason[reasons[j]]) {
				return len(byReason[reasons[i]]) > len(byReason[reasons[j]])
			}
			return reasons[i] < reasons[j]
		})
		fmt.Fprintf(w, "SKIPPED %d test(s), which did not run:\n", len(s.skips))
		for _, r := range reasons {
			sks := byReason[r]
			fmt.Fprintf(w, "  %d x %s\n", len(sks), r)
			names := make([]string, len(sks))
			for i, sk := range sks {
				names[i] = shortPkg(sk.pkg) + "." + sk.test
			}
			const show = 6
			if len(names) > show {
				names = append(names[:show], fmt.Sprintf("and %d more", len(sks)-show))
			}
			fmt.Fprintf(w, "      %s\n", strings.Join(names, ", "))
		}
	}
	for _, f := range s.failed {
		fmt.Fprintf(w, "FAILED %s\n", f)
	}
	for _, b := range s.builds {
		fmt.Fprintf(w, "BUILD FAILED %s\n", b)
	}
	pkgFailed := false
	for _, p := range s.pkgs {
		if p.outcome == "FAIL" {
			pkgFailed = true
			if !containsPrefix(s.failed, p.pkg+" ") {
				fmt.Fprintf(w, "FAILED %s (outside any test: see its output above)\n", p.pkg)
			}
		}
	}
	if s.events == 0 {
		fmt.Fprintln(w, "FAILED: no test results in the input")
		return false
	}
	ok := len(s.failed) == 0 && len(s.builds) == 0 && !pkgFailed
	if !ok && s.logName != "" && s.progress != nil {
		fmt.Fprintf(w, "the full output of every test is in %s\n", s.logName)
	}
	return ok
}

func containsPrefix(list []string, prefix string) bool {
	for _, l := range list {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// shortPkg drops the module path, which every package here shares.
func shortPkg(p string) string {
	const module = "github.com/spamtagger/sysextd/"
	return strings.TrimPrefix(p, module)
}
