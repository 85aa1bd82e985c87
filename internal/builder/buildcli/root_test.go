package buildcli

import (
	"strings"
	"testing"
)

// Usage errors exit 2 whatever cobra's wording, and nothing else does.
func TestUsageExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"unknown command", []string{"bild"}, ExitUsage, `unknown command "bild" for "sysext-build"`},
		{"unknown command suggests", []string{"bild"}, ExitUsage, "Did you mean this?\n\tbuild\n"},
		{"too many arguments", []string{"build", "a", "b"}, ExitUsage, "accepts at most 1 arg(s), received 2"},
		{"unknown flag", []string{"--nope"}, ExitUsage, "unknown flag: --nope"},
		{"unknown shorthand flag", []string{"check", "-x"}, ExitUsage, "unknown shorthand flag"},
		{"completion's own argument check", []string{"completion", "bash", "x"}, ExitUsage, `unknown command "x"`},
		{"no command prints help", nil, ExitOK, ""},
		{"help", []string{"help"}, ExitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("exit %d, want %d; stderr %q does not hold %q", code, tt.wantCode, stderr, tt.wantStderr)
			}
		})
	}
}
