package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The output of the run that failed `make test` on a fresh clone (Go
// 1.26, FuzzNewUploader, no input written).
const raceOut = `fuzz: elapsed: 0s, gathering baseline coverage: 0/6 completed
fuzz: elapsed: 0s, gathering baseline coverage: 6/6 completed, now fuzzing with 2 workers
fuzz: elapsed: 9s, execs: 93586 (12438/sec), new interesting: 144 (total: 150)
fuzz: elapsed: 10s, execs: 102798 (7150/sec), new interesting: 154 (total: 160)
--- FAIL: FuzzNewUploader (10.29s)
    context deadline exceeded
FAIL
exit status 1
FAIL	github.com/spamtagger/sysextd/internal/source	10.316s
`

// The output of CI's real finding in stop 17.
const findingOut = `fuzz: elapsed: 1s, execs: 8168 (7816/sec), new interesting: 0 (total: 181)
--- FAIL: FuzzParseSums (1.07s)
    --- FAIL: FuzzParseSums (0.00s)
        sums_test.go:65: round trip: map[0:00] != map[0:00]
    
    Failing input written to testdata/fuzz/FuzzParseSums/02788494d0bde048
    To re-run:
    go test -run=FuzzParseSums/02788494d0bde048
FAIL
exit status 1
`

const seedFailOut = `failure while testing seed corpus entry: FuzzParseAuth/5d183aae2dc9dded
--- FAIL: FuzzParseAuth (0.06s)
    --- FAIL: FuzzParseAuth (0.00s)
        auth_test.go:328: incomplete entry
FAIL
exit status 1
`

func TestJudge(t *testing.T) {
	exit1 := errors.New("exit status 1")
	for _, tt := range []struct {
		name  string
		err   error
		out   string
		added []string
		want  verdict
	}{
		{"clean", nil, "PASS\nok\n", nil, passed},
		{"coordinator race", exit1, raceOut, nil, coordinatorRace},
		{"finding", exit1, findingOut, []string{"02788494d0bde048"}, finding},
		// The same output without a new file (written elsewhere, or the
		// corpus unreadable) is still a failure, never a race.
		{"finding, file not seen", exit1, findingOut, nil, failed},
		{"seed corpus fails", exit1, seedFailOut, nil, failed},
		{"build error", exit1, "./x_test.go:3:1: syntax error\nFAIL\tpkg [build failed]\n", nil, failed},
		{"deadline text inside a real failure", exit1, "--- FAIL: FuzzX (1s)\n    --- FAIL: FuzzX (0.00s)\n        x_test.go:9: context deadline exceeded\n", nil, failed},
		{"panic", exit1, "--- FAIL: FuzzX (10s)\n    context deadline exceeded\npanic: boom\n", nil, failed},
		{"new input yet exit 0", nil, "PASS\n", []string{"abc"}, finding},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(tt.err, tt.out, tt.added); got != tt.want {
				t.Errorf("judge = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestNewInputs(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "FuzzX")
	if got := inputs(corpus); len(got) != 0 {
		t.Fatalf("missing corpus: %v", got)
	}
	if err := os.MkdirAll(corpus, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(corpus, "old"), nil, 0o644)
	before := inputs(corpus)
	os.WriteFile(filepath.Join(corpus, "new"), nil, 0o644)
	os.Mkdir(filepath.Join(corpus, "subdir"), 0o755)
	if got := newInputs(before, inputs(corpus)); !slices.Equal(got, []string{"new"}) {
		t.Errorf("new inputs = %q, want [new]", got)
	}
}
