package source

import (
	"strings"
	"testing"
)

const goodIndex = `{"format": 1, "image": "sysext-hello", "releases": [
 {"tag": "t1", "published_at": "2026-01-01T00:00:00Z", "assets": [
  {"name": "sysext-hello_trixie_amd64.squashfs", "size": 3, "sha256": "` + "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" + `"}]},
 {"tag": "t2", "published_at": "2026-02-01T00:00:00Z", "prerelease": true, "assets": []}]}`

func TestParseIndex(t *testing.T) {
	ix, err := ParseIndex([]byte(goodIndex), "sysext-hello")
	if err != nil {
		t.Fatal(err)
	}
	if ix.Releases[0].Tag != "t2" {
		t.Errorf("first release %q, want the newest (t2)", ix.Releases[0].Tag)
	}
	c := ix.Candidates("file:///srv/m/")
	if got, want := c[1].Assets[0].URL, "file:///srv/m/sysext-hello/t1/sysext-hello_trixie_amd64.squashfs"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	bad := []struct{ name, in, want string }{
		{"wrong image", goodIndex, "want \"other\""},
		{"traversal", strings.Replace(goodIndex, `"t1"`, `"../x"`, 1), "invalid tag"},
		{"slash in name", strings.Replace(goodIndex, `sysext-hello_trixie_amd64.squashfs`, `a/b`, 1), "invalid asset name"},
		{"short digest", strings.Replace(goodIndex, `ba7816bf`, ``, 1), "malformed sha256"},
		{"format", strings.Replace(goodIndex, `"format": 1`, `"format": 2`, 1), "format 2"},
		{"unknown key", strings.Replace(goodIndex, `"format": 1`, `"format": 1, "x": 1`, 1), "unknown field"},
	}
	for _, tt := range bad {
		image := "sysext-hello"
		if tt.name == "wrong image" {
			image = "other"
		}
		if _, err := ParseIndex([]byte(tt.in), image); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// TestParseIndexSameSecond: sysextctl mirror stamps published_at with the
// second it ran, so two releases mirrored within one second tie. The newer
// version must still come first, whatever order the file lists them in,
// or a mirror keeps serving the older release.
func TestParseIndexSameSecond(t *testing.T) {
	rel := func(tag, at string) string {
		return `{"tag": "` + tag + `", "published_at": "` + at + `", "assets": []}`
	}
	const same, later = "2026-11-26T02:34:37Z", "2026-11-26T02:34:38Z"
	tests := []struct {
		name     string
		releases []string
		want     string
	}{
		{"older listed first", []string{rel("v1", same), rel("v2", same)}, "v2 v1"},
		{"numeric, not string, order", []string{rel("v2", same), rel("v10", same), rel("v1.9-1", same)}, "v10 v2 v1.9-1"},
		{"tags that are no version last", []string{rel("nightly", same), rel("v1", same), rel("2.0", same)}, "2.0 v1 nightly"},
		{"published_at decides first", []string{rel("v2", same), rel("v1", later)}, "v1 v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := `{"format": 1, "image": "sysext-hello", "releases": [` + strings.Join(tt.releases, ",") + `]}`
			ix, err := ParseIndex([]byte(in), "sysext-hello")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range ix.Releases {
				got = append(got, r.Tag)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("order %v, want %s", got, tt.want)
			}
		})
	}
}

// FuzzParseIndex: never panics; whatever it accepts has only safe path
// components and well-formed digests.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(goodIndex))
	f.Add([]byte(`{"format":1,"image":"sysext-hello","releases":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data, "sysext-hello")
		if err != nil {
			return
		}
		for _, c := range ix.Candidates("file:///m") {
			for _, a := range c.Assets {
				if strings.Contains(a.URL, "/../") || strings.Count(a.URL, "/") != 6 {
					t.Fatalf("unsafe asset URL %q", a.URL)
				}
				if _, _, err := splitDigest(a.Digest); err != nil {
					t.Fatalf("accepted bad digest %q", a.Digest)
				}
			}
		}
	})
}
