package daemon

import (
	"bytes"
	"strings"
	"testing"
)

// sysextd --help is a request, not a usage error (issue 15); a bad flag is.
func TestMainHelpAndBadFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "-once"},
		{[]string{"-h"}, 0, "sysextd(8)"},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
		{[]string{"--version"}, 0, "sysextd v9"},
	} {
		var b bytes.Buffer
		if code := Main(t.Context(), tt.args, &b, "v9"); code != tt.code || !strings.Contains(b.String(), tt.want) {
			t.Errorf("sysextd %v: exit %d, output %q; want %d and %q", tt.args, code, b.String(), tt.code, tt.want)
		}
	}
}
