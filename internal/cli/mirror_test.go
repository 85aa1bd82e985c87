package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestMirrorTargetUsage: a --to that cannot be written to is a usage
// error before anything is looked up, and a password in it is never
// printed.
func TestMirrorTargetUsage(t *testing.T) {
	t.Setenv("SYSEXTD_MIRROR_TOKEN", "")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "http://ci:Pw0rd@mirror.example/m"}, "only allowed to loopback"},
		{[]string{"--to", "https://ci:Pw0rd@h/%zz"}, "does not parse"},
		{[]string{"--to", "https://github.com/SpamTagger/sysext-hello"}, "want https://HOST/PATH"},
		{[]string{"--to", "/srv/mirror", "--token-file", "/nonexistent"}, "--token-file is for an https:// upload target"},
		{[]string{"--to", "https://mirror.example/m", "--token-file", "/nonexistent"}, "reading --token-file"},
		{[]string{"--to", "ftp://mirror.example/m"}, "unsupported scheme"},
	} {
		var out, errb bytes.Buffer
		code := Run(t.Context(), append([]string{"--root", t.TempDir(), "mirror"}, tt.args...), &out, &errb)
		if code != ExitUsage || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("mirror %q: exit %d, stderr %q; want %d and %q", tt.args, code, errb.String(), ExitUsage, tt.want)
		}
		if strings.Contains(errb.String()+out.String(), "Pw0rd") {
			t.Errorf("mirror %q printed the password: %q", tt.args, errb.String())
		}
	}
}
