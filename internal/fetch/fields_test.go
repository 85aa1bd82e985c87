package fetch

import (
	"maps"
	"testing"
)

func TestParseFields(t *testing.T) {
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
			if got := ParseFields([]byte(tt.in)); !maps.Equal(got, tt.want) {
				t.Errorf("ParseFields(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseManifestFields(f *testing.F) {
	f.Add(manifestFor("sysext-hello", "2.12-1", "trixie", "amd64"))
	f.Add([]byte("A=\"\\\"\"\nB='x'\n# c\nC=\"unterminated\\"))
	f.Add([]byte("=\n==\nA\n\"B\"=1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ParseFields(b)
		for k := range m {
			if !validKey(k) {
				t.Fatalf("ParseFields returned invalid key %q", k)
			}
		}
		back := ParseFields(FormatFields(m))
		if !maps.Equal(back, m) {
			t.Fatalf("round trip changed the fields:\n got %q\nwant %q", back, m)
		}
	})
}
