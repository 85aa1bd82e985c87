// Command fuzzall runs every fuzz target of the packages given, each for
// -fuzztime, and fails on the first finding: a failing input the fuzzer
// wrote under testdata/fuzz/, which is then to be committed as a
// regression seed.
//
//	go run ./internal/tools/fuzzall [-fuzztime 10s] [PACKAGE...]
//
// $GO names the go command (default: go on $PATH).
// Go 1.26's fuzz coordinator can end a duration-bounded run with a bare
// "context deadline exceeded" and no input (golang/go#75804, fixed in Go
// 1.27): its own deadline races a worker that is still busy. That is not a
// finding. Such a run is repeated once; when it happens again, it is
// reported as the toolchain's and the next target runs. Anything else
// that fails, or any run that leaves a new input, fails the whole run.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() { os.Exit(run()) }

// goCmd is $GO, else go.
func goCmd(args ...string) *exec.Cmd {
	g := os.Getenv("GO")
	if g == "" {
		g = "go"
	}
	return exec.Command(g, args...)
}

func run() int {
	fuzztime := flag.String("fuzztime", "10s", "how long each target runs (go test -fuzztime)")
	flag.Parse()
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	out, err := goCmd(append([]string{"list", "-f", "{{.ImportPath}} {{.Dir}}"}, pkgs...)...).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fuzzall: go list:", err)
		return 1
	}
	var total, races int
	for line := range strings.Lines(string(out)) {
		pkg, dir, _ := strings.Cut(strings.TrimSpace(line), " ")
		list, err := goCmd("test", "-list", "^Fuzz", pkg).Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "fuzzall: listing the fuzz targets of %s: %v\n", pkg, err)
			return 1
		}
		for t := range strings.Lines(string(list)) {
			target := strings.TrimSpace(t)
			if !strings.HasPrefix(target, "Fuzz") {
				continue
			}
			total++
			fmt.Println("fuzz", pkg, target)
			corpus := filepath.Join(dir, "testdata", "fuzz", target)
			for attempt := 1; ; attempt++ {
				before := inputs(corpus)
				cmd := goCmd("test", "-run", "^$", "-fuzz", "^"+target+"$", "-fuzztime", *fuzztime, pkg)
				var b bytes.Buffer
				cmd.Stdout, cmd.Stderr = &b, &b
				err := cmd.Run()
				v := judge(err, b.String(), newInputs(before, inputs(corpus)))
				if v == passed {
					break
				}
				if v == coordinatorRace {
					races++
					fmt.Printf("fuzz: %s ended with Go's fuzztime race (golang/go#75804: \"context deadline exceeded\", no input written); ", target)
					if attempt < 2 {
						fmt.Println("running it again")
						continue
					}
					fmt.Println("not a finding, going on")
					break
				}
				fmt.Print(tail(b.String(), 30))
				if v == finding {
					fmt.Printf("fuzz: %s failed; the input is in %s: commit it as a regression seed\n", target, corpus)
				} else {
					fmt.Printf("fuzz: %s failed without writing an input\n", target)
				}
				return 1
			}
		}
	}
	fmt.Printf("fuzz: %d targets for %s each, no finding (%d coordinator races)\n", total, *fuzztime, races)
	return 0
}

type verdict int

const (
	passed verdict = iota
	finding
	coordinatorRace
	failed
)

// judge reads one go test -fuzz run: its error, output and the inputs it
// added to the corpus.
func judge(err error, out string, added []string) verdict {
	switch {
	case len(added) > 0:
		return finding
	case err == nil:
		return passed
	case isCoordinatorRace(out):
		return coordinatorRace
	}
	return failed
}

// isCoordinatorRace: the target's failure is the coordinator's bare
// deadline, and nothing else failed.
func isCoordinatorRace(out string) bool {
	var fails, deadline int
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "--- FAIL: Fuzz") {
			fails++
			if i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "context deadline exceeded" {
				deadline++
			}
		}
		if strings.Contains(l, "panic:") || strings.Contains(l, "Failing input written to") {
			return false
		}
	}
	return fails == 1 && deadline == 1
}

// inputs lists the corpus files of one target.
func inputs(dir string) map[string]bool {
	m := map[string]bool{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return m
	}
	for _, e := range ents {
		if e.Type()&fs.ModeType == 0 {
			m[e.Name()] = true
		}
	}
	return m
}

func newInputs(before, after map[string]bool) []string {
	var out []string
	for n := range after {
		if !before[n] {
			out = append(out, n)
		}
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n")+"\n", "\n")
	if len(lines) > n+1 {
		lines = lines[len(lines)-n-1:]
	}
	return strings.Join(lines, "")
}
