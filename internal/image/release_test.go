package image

import (
	"maps"
	"strings"
	"testing"
)

func TestParseRelease(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
	}{
		{"plain", "ID=debian\nVERSION_ID=13\n", map[string]string{"ID": "debian", "VERSION_ID": "13"}},
		{"double quotes", `PRETTY_NAME="Debian GNU/Linux 13 (trixie)"`, map[string]string{"PRETTY_NAME": "Debian GNU/Linux 13 (trixie)"}},
		{"single quotes keep backslashes", `A='x\y "z"'`, map[string]string{"A": `x\y "z"`}},
		{"escapes in double quotes", `A="a \"b\" \$c \\ \` + "`" + `d\n"`, map[string]string{"A": `a "b" $c \ ` + "`" + `d\n`}},
		{"escape unquoted", `A=a\ b`, map[string]string{"A": "a b"}},
		{"comments and blanks", "# comment\n\n  \nID=x\n  # indented comment\n", map[string]string{"ID": "x"}},
		{"no trailing newline", "ID=x", map[string]string{"ID": "x"}},
		{"CRLF and spaces", "ID=x \r\nVERSION_ID = 13\r\n", map[string]string{"ID": "x", "VERSION_ID": "13"}},
		{"empty value", "VARIANT=\nB=\"\"", map[string]string{"VARIANT": "", "B": ""}},
		{"value with equals", `UPDATE="service: a=b"`, map[string]string{"UPDATE": "service: a=b"}},
		{"later wins", "ID=a\nID=b\n", map[string]string{"ID": "b"}},
		{"concatenation", `A="x"'y'z`, map[string]string{"A": "xyz"}},
		{"BOM", "\uFEFFID=x\n", map[string]string{"ID": "x"}},
		{"lower-case key", "sysext_x=1", map[string]string{"sysext_x": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRelease(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("ParseRelease(%q): %v", tc.in, err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("ParseRelease(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseReleaseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no equals", "ID=x\nGARBAGE\n", "line 2: missing '='"},
		{"bad key", "1ID=x", `invalid key "1ID"`},
		{"empty key", "=x", `invalid key ""`},
		{"key with dash", "A-B=x", `invalid key "A-B"`},
		{"unterminated double", "\nA=\"x", "line 2 (A): unterminated double quote"},
		{"unterminated single", "A='x", "unterminated single quote"},
		{"line too long", "A=" + strings.Repeat("x", maxReleaseLine+1), "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRelease(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseRelease = %q, %v; want error containing %q", got, err, tc.want)
			}
		})
	}
}
