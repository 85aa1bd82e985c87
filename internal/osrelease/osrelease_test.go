package osrelease

import (
	"maps"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"plain", "ID=debian\nVERSION_ID=13\n", map[string]string{"ID": "debian", "VERSION_ID": "13"}},
		{"double quotes and escapes", `NAME="a \"b\" \$c \\d \x"`, map[string]string{"NAME": `a "b" $c \d \x`}},
		{"single quotes literal", `NAME='a \"b'`, map[string]string{"NAME": `a \"b`}},
		{"comments, blanks, junk", "# c\n\n  \nnot a line\n1BAD=x\nOK=1\r\n", map[string]string{"OK": "1"}},
		{"later wins", "A=1\nA=2", map[string]string{"A": "2"}},
		{"empty value", "A=\nB=\"\"", map[string]string{"A": "", "B": ""}},
		{"equals in value", `A="x=y"`, map[string]string{"A": "x=y"}},
		{"unterminated quote", `A="open`, map[string]string{"A": "open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parse([]byte(tt.in)); !maps.Equal(got, tt.want) {
				t.Errorf("Parse(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("ID=debian\nVERSION_ID=13\nNAME=sysext-hello\nPACKAGE_VERSION=\"2.12-1\"\nBUILD_TIME=2026-11-01T09:00:00Z\n"))
	f.Add([]byte("A=\"\\\"\"\nB='x'\n# c\nC=\"unterminated\\"))
	f.Add([]byte("=\n==\nA\n\"B\"=1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := Parse(b)
		for k := range m {
			if !validKey(k) {
				t.Fatalf("Parse returned invalid key %q", k)
			}
		}
		back := Parse(Format(m))
		if !maps.Equal(back, m) {
			t.Fatalf("round trip changed the fields:\n got %q\nwant %q", back, m)
		}
	})
}

// TestParseHostOSRelease is the host os-release case facts relies on:
// comments, both quote styles, escapes, and a broken line skipped.
func TestParseHostOSRelease(t *testing.T) {
	got := Parse([]byte("# c\nID=debian\nVERSION_ID=\"13\"\nNAME='Debian'\nPRETTY=\"a \\\"b\\\"\"\n\nbroken\n"))
	want := map[string]string{"ID": "debian", "VERSION_ID": "13", "NAME": "Debian", "PRETTY": `a "b"`}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
