// Command testsummary reads `go test -json` on stdin and prints what a
// person needs from it: the output of failing tests, one line per package,
// and a closing summary that counts passed, failed and skipped tests and
// lists every skip with its reason, so that a test that did not run can
// never pass for one that did (a root-only test run by a normal user, a
// test whose tool or mirror is missing).
//
//	go test -json ./... | go run ./internal/tools/testsummary [-v | -progress REGEXP] [-log FILE]
//
// -v prints every line of test output as it arrives (as go test -v would),
// -progress REGEXP only the lines that match; -log FILE also writes the full
// output to FILE. The exit status is 1 when
// any test or build failed, or when the input held no test event at all.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
)

func main() { os.Exit(run()) }

func run() int {
	verbose := flag.Bool("v", false, "print all test output")
	logFile := flag.String("log", "", "also write all test output to `FILE`")
	progress := flag.String("progress", "", "print the output lines matching `REGEXP` as they arrive")
	flag.Parse()
	var log io.Writer
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			return 1
		}
		defer f.Close()
		log = f
	}
	s := newSummary(os.Stdout, *verbose, log)
	s.logName = *logFile
	if *progress != "" {
		re, err := regexp.Compile(*progress)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary: -progress:", err)
			return 1
		}
		s.progress = re
	}
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		return 1
	}
	if !s.print() {
		return 1
	}
	return 0
}
