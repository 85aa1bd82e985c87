package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/fakegithub"
)

// imageAsset publishes one release with the given image asset and returns
// the Asset as Latest reports it.
func imageAsset(t *testing.T, s *fakegithub.Server, g *GitHub, a fakegithub.Asset) Asset {
	t.Helper()
	a.Name = "sysext-hello_trixie_amd64.squashfs"
	s.Publish("SpamTagger", "sysext-hello", fakegithub.Release{Tag: "t1", Assets: []fakegithub.Asset{
		a,
		{Name: "sysext-hello_trixie_amd64.manifest", Data: manifestFor("sysext-hello", "1.0-1", "trixie", "amd64")},
	}})
	rel, err := g.Latest(t.Context(), request("sysext-hello", "sysext-hello"), trixie)
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	return rel.Image
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestDownload(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	sum := sha256.Sum256(payload)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	tests := []struct {
		name     string
		asset    fakegithub.Asset
		fault    fakegithub.Fault
		maxSize  int64
		check    func(error) bool // nil: success expected
		wantDesc string
	}{
		{name: "verified", asset: fakegithub.Asset{Data: payload}},
		{name: "no published digest", asset: fakegithub.Asset{Data: payload, OmitDigest: true}},
		{name: "wrong bytes", asset: fakegithub.Asset{Data: payload}, fault: fakegithub.FaultWrongBytes,
			check: func(err error) bool { var e *DigestMismatchError; return errors.As(err, &e) && e.Want == digest }, wantDesc: "*DigestMismatchError"},
		{name: "lying digest", asset: fakegithub.Asset{Data: payload, PublishDigest: "sha256:" + strings.Repeat("0", 64)},
			check: func(err error) bool { var e *DigestMismatchError; return errors.As(err, &e) && e.Got == digest }, wantDesc: "*DigestMismatchError"},
		{name: "lying size", asset: fakegithub.Asset{Data: payload, PublishSize: int64(len(payload)) - 1},
			check: func(err error) bool { var e *SizeMismatchError; return errors.As(err, &e) }, wantDesc: "*SizeMismatchError"},
		{name: "published size over cap", asset: fakegithub.Asset{Data: payload}, maxSize: 1000,
			check: func(err error) bool { return errors.Is(err, ErrTooLarge) }, wantDesc: "ErrTooLarge"},
		{name: "streamed size over cap", asset: fakegithub.Asset{Data: payload, PublishSize: 10}, maxSize: 1000,
			check: func(err error) bool { return errors.Is(err, ErrTooLarge) || isSizeMismatch(err) }, wantDesc: "ErrTooLarge or size mismatch"},
		{name: "unpublished size over cap", asset: fakegithub.Asset{Data: payload, PublishSize: -1, OmitDigest: true}, maxSize: 1000,
			check: func(err error) bool { return errors.Is(err, ErrTooLarge) }, wantDesc: "ErrTooLarge"},
		{name: "body cut short", asset: fakegithub.Asset{Data: payload}, fault: fakegithub.FaultCutShort,
			check: IsNetwork, wantDesc: "a network error"},
		{name: "server error", asset: fakegithub.Asset{Data: payload}, fault: fakegithub.FaultServerError,
			check: IsNetwork, wantDesc: "a network error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			g := newGitHub(t, s, func(o *GitHubOptions) { o.MaxSize = tt.maxSize })
			a := imageAsset(t, s, g, tt.asset)
			s.SetDownloadFault(tt.fault)
			dir := t.TempDir()
			d, err := g.Download(t.Context(), a, dir)
			if tt.check != nil {
				if err == nil || !tt.check(err) {
					t.Errorf("Download error = %v, want %s", err, tt.wantDesc)
				}
				if left := dirEntries(t, dir); len(left) != 0 {
					t.Errorf("files left in dir after a failed download: %v", left)
				}
				return
			}
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			if d.SHA256 != digest || d.Size != int64(len(payload)) {
				t.Errorf("Downloaded = %+v, want digest %s size %d", d, digest, len(payload))
			}
			got, err := os.ReadFile(d.Path)
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("file content differs from the asset (err %v)", err)
			}
			if left := dirEntries(t, dir); len(left) != 1 || !strings.HasPrefix(left[0], ".") {
				t.Errorf("dir holds %v, want exactly one hidden temporary file", left)
			}
		})
	}
}

func isSizeMismatch(err error) bool {
	var e *SizeMismatchError
	return errors.As(err, &e)
}

func TestDownloadStalledBody(t *testing.T) {
	s := newFake(t)
	g := newGitHub(t, s, func(o *GitHubOptions) { o.StallTimeout = 300 * time.Millisecond })
	a := imageAsset(t, s, g, fakegithub.Asset{Data: bytes.Repeat([]byte{1}, 1<<20)})
	for _, f := range []fakegithub.Fault{fakegithub.FaultStall, fakegithub.FaultStallBody} {
		s.SetDownloadFault(f)
		dir := t.TempDir()
		done := make(chan error, 1)
		go func() { _, err := g.Download(t.Context(), a, dir); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrStalled) || !IsNetwork(err) {
				t.Errorf("fault %d: Download error = %v, want a network error wrapping ErrStalled", f, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fault %d: Download did not give up on a stalled server", f)
		}
		if left := dirEntries(t, dir); len(left) != 0 {
			t.Errorf("fault %d: files left: %v", f, left)
		}
	}
}

// TestTokenStaysOnAPIHost: the API is 127.0.0.1, downloads are served from
// "localhost"; the token must reach the former only.
func TestTokenStaysOnAPIHost(t *testing.T) {
	s := newFake(t)
	s.SetDownloadHost("localhost")
	g := newGitHub(t, s, func(o *GitHubOptions) { o.Token = "s3cret" })
	a := imageAsset(t, s, g, fakegithub.Asset{Data: []byte("image bytes")})
	if _, err := g.Download(t.Context(), a, t.TempDir()); err != nil {
		t.Fatalf("Download: %v", err)
	}
	var api, dl int
	for _, r := range s.Requests() {
		onAPI := strings.HasPrefix(r.Host, "127.0.0.1:")
		switch {
		case onAPI && r.Authorization != "Bearer s3cret":
			t.Errorf("API request %s %s carried Authorization %q, want the token", r.Host, r.Path, r.Authorization)
		case !onAPI && r.Authorization != "":
			t.Errorf("download request %s %s carried Authorization %q, want none", r.Host, r.Path, r.Authorization)
		}
		if onAPI {
			api++
		} else {
			dl++
		}
	}
	if api == 0 || dl == 0 {
		t.Errorf("saw %d API and %d download-host requests, want both", api, dl)
	}
}

func TestDownloadRefusesInsecure(t *testing.T) {
	s := newFake(t)
	g := newGitHub(t, s, nil)
	tests := []struct{ name, url string }{
		{"plain http to a public host", "http://example.com/asset"},
		{"plain http to a private address", "http://10.1.2.3/asset"},
		{"file scheme", "file:///etc/passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := g.Download(t.Context(), Asset{Name: "x", URL: tt.url}, dir)
			if !errors.Is(err, ErrInsecure) {
				t.Errorf("Download(%s) error = %v, want ErrInsecure", tt.url, err)
			}
			if IsNetwork(err) {
				t.Errorf("IsNetwork(%v) = true, want false", err)
			}
		})
	}
}

func TestRedirectDowngradeRefused(t *testing.T) {
	mk := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name, from, to string
		wantErr        bool
	}{
		{"https to http", "https://api.example/y", "http://objects.example/x", true},
		{"https to http loopback", "https://127.0.0.1/y", "http://127.0.0.1/x", true},
		{"https to https", "https://api.example/y", "https://objects.example/x", false},
		{"http loopback to http loopback", "http://127.0.0.1/y", "http://localhost/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRedirect(mk(tt.to), []*http.Request{mk(tt.from)})
			if got := errors.Is(err, ErrInsecure); got != tt.wantErr {
				t.Errorf("CheckRedirect(%s -> %s) = %v, want ErrInsecure %v", tt.from, tt.to, err, tt.wantErr)
			}
		})
	}
}

func TestDownloadProgress(t *testing.T) {
	s := newFake(t)
	var out bytes.Buffer
	g := newGitHub(t, s, func(o *GitHubOptions) { o.Progress = &out })
	a := imageAsset(t, s, g, fakegithub.Asset{Data: bytes.Repeat([]byte{7}, 3<<20)})
	if _, err := g.Download(t.Context(), a, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, a.Name) || !strings.Contains(got, "100%") || !strings.HasSuffix(got, "\n") {
		t.Errorf("progress output %q, want the asset name, 100%% and a final newline", got)
	}
}
