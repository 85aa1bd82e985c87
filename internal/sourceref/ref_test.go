package sourceref

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		hosts    []string
		want     Ref
		wantErr  string
	}{
		{"github", "https://github.com/SpamTagger/sysext-hello", nil,
			Ref{Kind: KindGitHub, URL: "https://github.com/SpamTagger/sysext-hello", Host: "github.com", Owner: "SpamTagger", Repo: "sysext-hello"}, ""},
		{"github .git and slash", "https://GitHub.com/o/r.git/", nil,
			Ref{Kind: KindGitHub, URL: "https://github.com/o/r", Host: "github.com", Owner: "o", Repo: "r"}, ""},
		{"github extra path", "https://github.com/o/r/releases", nil, Ref{}, "want https://github.com/OWNER/REPO"},
		{"ghes configured", "https://ghe.example.com/o/r", []string{"ghe.example.com"},
			Ref{Kind: KindGitHub, URL: "https://ghe.example.com/o/r", Host: "ghe.example.com", Owner: "o", Repo: "r"}, ""},
		{"ghes unconfigured is a mirror", "https://ghe.example.com/o/r", nil,
			Ref{Kind: KindMirror, URL: "https://ghe.example.com/o/r", Host: "ghe.example.com", Path: "/o/r"}, ""},
		{"https mirror", "https://mirror.example/sysext/", nil,
			Ref{Kind: KindMirror, URL: "https://mirror.example/sysext", Host: "mirror.example", Path: "/sysext"}, ""},
		{"http loopback mirror", "http://127.0.0.1:8080/m", nil,
			Ref{Kind: KindMirror, URL: "http://127.0.0.1:8080/m", Host: "127.0.0.1:8080", Path: "/m"}, ""},
		{"http elsewhere", "http://mirror.example/m", nil, Ref{}, "use https"},
		{"http 127 lookalike", "http://127.evil.example/m", nil, Ref{}, "use https"},
		{"file mirror", "file:///srv/sysext/../mirror", nil, Ref{Kind: KindMirror, URL: "file:///srv/mirror", Path: "/srv/mirror"}, ""},
		{"file relative", "file://srv/mirror", nil, Ref{}, "file:///PATH"},
		{"oci", "oci://ghcr.io/spamtagger/sysext-hello", nil,
			Ref{Kind: KindOCI, URL: "oci://ghcr.io/spamtagger/sysext-hello", Host: "ghcr.io", Path: "spamtagger/sysext-hello"}, ""},
		{"oci upper case", "oci://ghcr.io/SpamTagger/x", nil, Ref{}, "lower-case"},
		{"oci tag", "oci://127.0.0.1:5000/sysext-hello:v1.2_trixie_amd64", nil,
			Ref{Kind: KindOCI, URL: "oci://127.0.0.1:5000/sysext-hello", Host: "127.0.0.1:5000", Path: "sysext-hello", Tag: "v1.2_trixie_amd64"}, ""},
		{"oci bad tag", "oci://ghcr.io/x:-bad", nil, Ref{}, "tag \"-bad\""},
		{"oci no repo", "oci://localhost:5000", nil, Ref{}, "want oci://REGISTRY/REPOSITORY"},
		{"local absolute", "/tmp/sysext-foo.raw", nil, Ref{Kind: KindLocal, URL: "/tmp/sysext-foo.raw", Path: "/tmp/sysext-foo.raw"}, ""},
		{"local relative", "./sysext-foo.raw", nil, Ref{Kind: KindLocal, URL: "sysext-foo.raw", Path: "sysext-foo.raw"}, ""},
		{"user info", "https://user:pw@github.com/o/r", nil, Ref{}, "user info"},
		{"ftp", "ftp://x/y", nil, Ref{}, "unsupported scheme"},
		{"empty", " ", nil, Ref{}, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in, tt.hosts...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that what it accepts parses
// again to the same Ref (the normalized URL is a fixed point).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"https://github.com/o/r", "file:///srv/m", "oci://localhost:5000/a/b", "./x.raw",
		"http://[::1]:80/m", "https://ghe/o/r", "oci://h/a__b", "oci://h:1/a:v1_x", "file://localhost/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s, "ghe")
		if err != nil {
			return
		}
		if r.Kind == KindLocal {
			return
		}
		u := r.URL
		if r.Tag != "" {
			u += ":" + r.Tag
		}
		again, err := Parse(u, "ghe")
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, r.URL, err)
		}
		if again != r {
			t.Fatalf("Parse(%q) = %+v, Parse of its URL = %+v", s, r, again)
		}
	})
}
