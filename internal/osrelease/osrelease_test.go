package osrelease

import (
	"errors"
	"maps"
	"testing"
)

// TestLoad pins systemd v257's env-file rules (src/basic/env-file.c), one
// case each; docs/extension-release.md lists them.
func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"plain", "ID=debian\nVERSION_ID=13\n", map[string]string{"ID": "debian", "VERSION_ID": "13"}},
		{"double quotes and escapes", `NAME="a \"b\" \$c \\d \x"`, map[string]string{"NAME": `a "b" $c \d \x`}},
		{"single quotes literal", `NAME='a \"b'`, map[string]string{"NAME": `a \"b`}},
		{"hash and semicolon comments", "# c\n; c\n  # indented\nID=x\n", map[string]string{"ID": "x"}},
		{"line without = skipped", "not a line\nID=x\n", map[string]string{"ID": "x"}},
		{"keys are not validated", "1BAD=x\nA-B=y\n", map[string]string{"1BAD": "x", "A-B": "y"}},
		{"key whitespace trimmed", "  ID  =  x  \n", map[string]string{"ID": "x"}},
		{"space inside key kept", "A B=1", map[string]string{"A B": "1"}},
		{"CRLF", "OK=1\r\nB=2\r\n", map[string]string{"OK": "1", "B": "2"}},
		{"later wins", "A=1\nA=2", map[string]string{"A": "2"}},
		{"empty value", "A=\nB=\"\"", map[string]string{"A": "", "B": ""}},
		{"equals in value", `A="x=y"`, map[string]string{"A": "x=y"}},
		{"unterminated quote runs to EOF", "A=\"open\nB=2", map[string]string{"A": "open\nB=2"}},
		{"continuation unquoted", "A=a\\\nb\n", map[string]string{"A": "ab"}},
		{"continuation in double quotes", "A=\"a\\\nb\"\n", map[string]string{"A": "ab"}},
		{"escape unquoted", `A=a\ b\x`, map[string]string{"A": "a bx"}},
		{"escaped trailing space kept", "A=a\\ \n", map[string]string{"A": "a "}},
		{"concatenation", `A="x"'y'z`, map[string]string{"A": "xyz"}},
		{"blank between quoted parts dropped", `A="x" "y"`, map[string]string{"A": "xy"}},
		{"quote inside unquoted value literal", `A=x "y"`, map[string]string{"A": `x "y"`}},
		{"hash inside value", "A=x # not a comment", map[string]string{"A": "x # not a comment"}},
		{"comment backslash does not continue", "# c \\\nID=x\n", map[string]string{"ID": "x"}},
		{"BOM stays in the key", "\uFEFFID=x\n", map[string]string{"\uFEFFID": "x"}},
		{"leading = is part of the key", "=a=b\n", map[string]string{"=a": "b"}},
		{"key at EOF without =", "A=1\nB", map[string]string{"A": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load([]byte(tt.in))
			if err != nil {
				t.Fatalf("Load(%q): %v", tt.in, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("Load(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if p := Parse([]byte(tt.in)); !maps.Equal(p, tt.want) {
				t.Errorf("Parse(%q) = %q, want %q", tt.in, p, tt.want)
			}
		})
	}
}

func TestNUL(t *testing.T) {
	in := []byte("A=1\nB=2\x00\nC=3")
	if _, err := Load(in); !errors.Is(err, ErrNUL) {
		t.Errorf("Load error = %v, want ErrNUL", err)
	}
	if got, want := Parse(in), map[string]string{"A": "1", "B": "2"}; !maps.Equal(got, want) {
		t.Errorf("Parse = %q, want %q (stops at the NUL)", got, want)
	}
}

func TestLoadInvalidUTF8(t *testing.T) {
	for name, in := range map[string]string{
		"bad byte in value":  "ID=x\nNAME=a\xffb\n",
		"bad byte in key":    "ID=x\nN\xc3=1\n",
		"surrogate":          "NAME=\xed\xa0\x80\n",
		"noncharacter FFFE":  "NAME=\xef\xbf\xbe\n",
		"noncharacter FDD0":  "NAME=\xef\xb7\x90\n",
		"overlong encoding":  "NAME=\xc0\xaf\n",
		"above U+10FFFF":     "NAME=\xf4\x90\x80\x80\n",
		"in single quotes":   "ID=x\nA='\xff'\n",
		"truncated sequence": "A=\xe2\x82",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load([]byte(in))
			var ue *InvalidUTF8Error
			if !errors.As(err, &ue) {
				t.Fatalf("Load(%q) error = %v, want *InvalidUTF8Error", in, err)
			}
			if p := Parse([]byte(in)); p["ID"] != "" && p["ID"] != "x" {
				t.Errorf("Parse kept a broken pair: %q", p)
			}
		})
	}
	if _, err := Load([]byte("NAME=\"Débian ✓ \U0001F600\"\nX=\uFEFF\n")); err != nil {
		t.Errorf("valid UTF-8 refused: %v", err)
	}
	// The line names where the bad assignment starts.
	_, err := Load([]byte("A=1\n\nB=\"x\ny\xff\"\n"))
	var ue *InvalidUTF8Error
	if !errors.As(err, &ue) || ue.Line != 3 || ue.Key != "B" {
		t.Errorf("error = %#v, want line 3 key B", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("ID=debian\nVERSION_ID=13\nNAME=sysext-hello\nPACKAGE_VERSION=\"2.12-1\"\nBUILD_TIME=2026-11-01T09:00:00Z\n"))
	f.Add([]byte("A=\"\\\"\"\nB='x'\n# c\nC=\"unterminated\\"))
	f.Add([]byte("=\n==\nA\n\"B\"=1\n;x\nA=b\\\nc\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := Parse(b)
		strict, err := Load(b)
		if err == nil && !maps.Equal(strict, m) {
			t.Fatalf("Load and Parse differ on valid input: %q vs %q", strict, m)
		}
		valid := map[string]string{}
		for k, v := range m {
			if !validUTF8(k) || !validUTF8(v) {
				t.Fatalf("Parse returned invalid UTF-8 %q=%q", k, v)
			}
			if ValidKey(k) {
				valid[k] = v
			}
		}
		back := Parse(Format(valid))
		if !maps.Equal(back, valid) {
			t.Fatalf("round trip changed the fields:\n got %q\nwant %q", back, valid)
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
