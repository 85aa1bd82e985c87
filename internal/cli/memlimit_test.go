package cli

import (
	"os"
	"testing"
)

// TestListMemoryLimit: list limits the memory of the sysextctl process
// (Main) unless GOMEMLIMIT is set, and never a process running cli.Run (a
// test binary, whose heap is not the command's).
func TestListMemoryLimit(t *testing.T) {
	var got []int64
	o := &options{setMemoryLimit: func(n int64) int64 { got = append(got, n); return 0 }}
	if v, set := os.LookupEnv("GOMEMLIMIT"); set {
		t.Cleanup(func() { os.Setenv("GOMEMLIMIT", v) })
	}
	os.Unsetenv("GOMEMLIMIT")
	o.limitListMemory()
	if len(got) != 1 || got[0] != listMemoryLimit {
		t.Fatalf("without GOMEMLIMIT: limits %v, want [%d]", got, listMemoryLimit)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	o.limitListMemory()
	if len(got) != 1 {
		t.Errorf("GOMEMLIMIT set: limits %v, want it left to the runtime", got)
	}
	(&options{}).limitListMemory() // cli.Run: no limit function, no panic
}
