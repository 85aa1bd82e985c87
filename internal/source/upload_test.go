package source

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/testutil/putserver"
)

// mirrorRelease writes files as release v1.0-1 of a file:// mirror and
// returns that release and the mirror as the source to copy from.
func mirrorRelease(t *testing.T, files map[string][]byte) (*Release, Source) {
	t.Helper()
	base := t.TempDir()
	writeMirror(t, base, files)
	m := NewMirror(HTTPOptions{}, "")
	res := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: "file://" + base}}, trixie)["hello"]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return res.Release, m
}

var published = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)

func TestUploadFreshThenSkipsUnchanged(t *testing.T) {
	srv := putserver.New(t, t.TempDir())
	srv.RequireToken("s3cret")
	rel, src := mirrorRelease(t, helloFiles())
	up, err := NewUploader(srv.URL+"/m/", "s3cret", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatalf("fresh upload: %v", err)
	}
	puts := srv.Puts()
	want := []string{
		"/m/sysext-hello/v1.0-1/SHA256SUMS",
		"/m/sysext-hello/v1.0-1/sysext-hello_trixie_amd64.manifest",
		"/m/sysext-hello/v1.0-1/sysext-hello_trixie_amd64.squashfs",
		"/m/sysext-hello/index.json",
	}
	if !slices.Equal(puts, want) {
		t.Fatalf("PUTs %q, want %q (assets first, the index last)", puts, want)
	}

	// What was uploaded is a mirror: look the release up over http and
	// download the image, digest checked.
	m := NewMirror(HTTPOptions{}, "")
	got := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: srv.URL + "/m"}}, trixie)["hello"]
	if got.Err != nil || got.Release.Version != "1.0-1" || got.Release.Image.Digest != rel.Image.Digest {
		t.Fatalf("reading the uploaded mirror: %+v", got)
	}
	if _, err := m.Download(t.Context(), got.Release.Image, t.TempDir()); err != nil {
		t.Fatalf("downloading from the uploaded mirror: %v", err)
	}

	// Again: nothing changed, only the index is put.
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatalf("re-upload: %v", err)
	}
	if again := srv.Puts()[len(want):]; !slices.Equal(again, want[3:]) {
		t.Errorf("re-upload PUTs %q, want only the index", again)
	}
	// An asset the index lists but the server lost (HEAD finds none) is put again.
	if err := os.Remove(filepath.Join(srv.Dir, "m", "sysext-hello", "v1.0-1", "SHA256SUMS")); err != nil {
		t.Fatal(err)
	}
	n := len(srv.Puts())
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatalf("re-upload: %v", err)
	}
	if again := srv.Puts()[n:]; !slices.Equal(again, []string{want[0], want[3]}) {
		t.Errorf("after losing SHA256SUMS, PUTs %q, want it and the index", again)
	}
}

func TestUploadRefusedLeavesNoIndex(t *testing.T) {
	srv := putserver.New(t, t.TempDir())
	srv.Fail(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			http.Error(w, "you may not write here\nsecond line", http.StatusForbidden)
			return true
		}
		return false
	})
	rel, src := mirrorRelease(t, helloFiles())
	up, err := NewUploader(srv.URL+"/m", "wrong-token", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false)
	if err == nil {
		t.Fatal("upload to a server refusing PUT succeeded")
	}
	msg := err.Error()
	for _, w := range []string{"PUT " + srv.URL + "/m/sysext-hello/v1.0-1/", "403 Forbidden", "you may not write here", "SYSEXTD_MIRROR_TOKEN"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "second line") || strings.Contains(msg, "wrong-token") {
		t.Errorf("error %q carries more than the first line of the body, or the token", msg)
	}
	if IsNetwork(err) {
		t.Errorf("a refusal is classified as a network error: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir, "m", "sysext-hello", "index.json")); !os.IsNotExist(err) {
		t.Errorf("index written after a refused PUT (stat: %v)", err)
	}
}

func TestUploadFailingMidwayKeepsOldIndex(t *testing.T) {
	srv := putserver.New(t, t.TempDir())
	rel, src := mirrorRelease(t, helloFiles())
	up, err := NewUploader(srv.URL, "", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatal(err)
	}
	ixPath := filepath.Join(srv.Dir, "sysext-hello", "index.json")
	before, err := os.ReadFile(ixPath)
	if err != nil {
		t.Fatal(err)
	}
	// The release is rebuilt under the same tag (other bytes, other
	// digests); the server dies on the second PUT.
	files := helloFiles()
	files["sysext-hello_trixie_amd64.squashfs"] = []byte("rebuilt squashfs, other size")
	files["SHA256SUMS"] = []byte("other sums\n")
	rel2, src2 := mirrorRelease(t, files)
	var puts atomic.Int32
	srv.Fail(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && puts.Add(1) == 2 {
			http.Error(w, "disk full", http.StatusInsufficientStorage)
			return true
		}
		return false
	})
	err = up.AddRelease(t.Context(), "sysext-hello", rel2, src2, published, false)
	if err == nil || !IsNetwork(err) || !strings.Contains(err.Error(), "507") {
		t.Fatalf("server failing mid-way: %v, want a network error naming the 507", err)
	}
	after, err := os.ReadFile(ixPath)
	if err != nil || !bytes.Equal(after, before) {
		t.Errorf("index changed after a failed upload (%v):\n%s\nwas\n%s", err, after, before)
	}

	// A broken server answering the index GET with 500 stops everything
	// before a download or a PUT, naming the URL.
	n := len(srv.Puts())
	srv.Fail(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet {
			http.Error(w, "oops", http.StatusInternalServerError)
			return true
		}
		return false
	})
	err = up.AddRelease(t.Context(), "sysext-hello", rel2, src2, published, false)
	if err == nil || !strings.Contains(err.Error(), "GET "+srv.URL+"/sysext-hello/index.json: 500") {
		t.Errorf("index GET answered 500: %v", err)
	}
	if len(srv.Puts()) != n {
		t.Error("PUTs after the index could not be read")
	}
	// Nobody listening: a network error (sysextctl exits 4).
	srv.Close()
	if err := up.AddRelease(t.Context(), "sysext-hello", rel2, src2, published, false); !IsNetwork(err) {
		t.Errorf("server gone: %v, want a network error", err)
	}
}

func TestUploadBasicAuthNeverShowsPassword(t *testing.T) {
	srv := putserver.New(t, t.TempDir())
	srv.RequireBasic("ci", "pa55word")
	rel, src := mirrorRelease(t, helloFiles())
	withUser := func(user string) string { return strings.Replace(srv.URL, "http://", "http://"+user+"@", 1) + "/m" }

	up, err := NewUploader(withUser("ci:pa55word"), "", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(up.String(), "pa55word") {
		t.Errorf("String() = %q shows the password", up.String())
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatalf("upload with basic auth: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir, "m", "sysext-hello", "index.json")); err != nil {
		t.Fatalf("no index after the upload: %v", err)
	}

	bad, err := NewUploader(withUser("ci:Wr0ngPw"), "", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.AddRelease(t.Context(), "sysext-hello", rel, src, published, false)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "user and password") {
		t.Fatalf("wrong password: %v, want a 401 with a hint", err)
	}
	if strings.Contains(err.Error(), "Wr0ngPw") {
		t.Errorf("error shows the password: %v", err)
	}
	for _, raw := range []string{"https://ci:Wr0ngPw@h/%zz", "http://ci:Wr0ngPw@mirror.example/m", "ftp://ci:Wr0ngPw@h/m"} {
		_, err := NewUploader(raw, "", HTTPOptions{})
		if err == nil || strings.Contains(err.Error(), "Wr0ngPw") {
			t.Errorf("NewUploader(%q): %v, want an error without the password", raw, err)
		}
	}
	if _, err := NewUploader(withUser("ci:pa55word"), "tok", HTTPOptions{}); err == nil {
		t.Error("both a token and a password accepted")
	}
}

// TestUploadLoginFromAuthConf: without a token or user info, the login
// auth.conf holds for the target is sent; a wrong one is refused with a
// hint naming its line, never the password.
func TestUploadLoginFromAuthConf(t *testing.T) {
	srv := putserver.New(t, t.TempDir())
	srv.RequireBasic("ci", "pa55word")
	rel, src := mirrorRelease(t, helloFiles())
	host := strings.TrimPrefix(srv.URL, "http://")

	wrong, err := ParseAuth("/etc/sysextd/auth.conf", []byte("machine http://"+host+"/m login ci password Wr0ngPw\n"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := NewUploader(srv.URL+"/m", "", HTTPOptions{Auth: wrong})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.AddRelease(t.Context(), "sysext-hello", rel, src, published, false)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "the login for "+host+" in /etc/sysextd/auth.conf:1") || strings.Contains(err.Error(), "Wr0ngPw") {
		t.Fatalf("wrong login from auth.conf: %v, want a 401 naming the line, not the password", err)
	}

	good, err := ParseAuth("auth.conf", []byte("machine http://"+host+"/m login ci password pa55word\n"))
	if err != nil {
		t.Fatal(err)
	}
	up, err := NewUploader(srv.URL+"/m", "", HTTPOptions{Auth: good})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatalf("upload with the login from auth.conf: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir, "m", "sysext-hello", "index.json")); err != nil {
		t.Fatalf("no index after the upload: %v", err)
	}
	// A login for another path is not sent there.
	other, err := NewUploader(srv.URL+"/elsewhere", "", HTTPOptions{Auth: good})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("upload to a path auth.conf does not cover: %v, want a 401", err)
	}
}

// FuzzNewUploader: the upload URL parser never panics, never puts the
// password of the URL into its answer or its error, and accepts only
// https (or http to loopback) mirrors.
func FuzzNewUploader(f *testing.F) {
	f.Add("https://ci:Pw-secret@mirror.example/m/", "")
	f.Add("http://ci:Pw-secret@127.0.0.1:8080/m", "")
	f.Add("https://ci:Pw-secret@h/%zz", "")
	f.Add("https://mirror.example", "tok")
	f.Add("oci://ci:Pw-secret@r/x", "")
	f.Add("A:Pw-secret@", "0") // an opaque URL: its error once quoted it
	f.Fuzz(func(t *testing.T, raw, token string) {
		const pw = "Pw-secret"
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil {
			p, _ := u.User.Password()
			u.User = nil
			if p != pw || strings.Contains(u.String(), pw) {
				return // no password, or the same text elsewhere in the URL
			}
		} else if !strings.Contains(raw, pw) {
			return
		}
		up, err := NewUploader(raw, token, HTTPOptions{})
		if err != nil {
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("error %q shows the password", err)
			}
			return
		}
		if strings.Contains(up.String(), pw) {
			t.Fatalf("String() %q shows the password", up.String())
		}
		if !strings.HasPrefix(up.String(), "https://") && !strings.HasPrefix(up.String(), "http://") {
			t.Fatalf("accepted %q as %q", raw, up.String())
		}
	})
}

// TestUploadTooSlowFails: a server that stops reading the body, or reads
// it at a drip, fails the upload within about one rate window, as a network
// error, with no index written; it does not hold on until the deadline.
func TestUploadTooSlowFails(t *testing.T) {
	files := helloFiles()
	files["sysext-hello_trixie_amd64.squashfs"] = bytes.Repeat([]byte{7}, 16<<20) // more than the socket buffers
	rel, src := mirrorRelease(t, files)
	for _, tc := range []struct {
		name string
		read func(r io.Reader)
	}{
		{"stops reading", func(io.Reader) { time.Sleep(1500 * time.Millisecond) }},
		{"drips", func(r io.Reader) {
			b := make([]byte, 64)
			for range 30 {
				if _, err := r.Read(b); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var indexPuts atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodGet:
					http.NotFound(w, r)
				case strings.HasSuffix(r.URL.Path, "index.json"):
					indexPuts.Add(1)
					w.WriteHeader(http.StatusCreated)
				case strings.HasSuffix(r.URL.Path, ".squashfs"):
					tc.read(r.Body)
					w.WriteHeader(http.StatusCreated)
				default:
					io.Copy(io.Discard, r.Body)
					w.WriteHeader(http.StatusCreated)
				}
			}))
			defer srv.Close()
			up, err := NewUploader(srv.URL+"/m", "", HTTPOptions{MinRate: 1 << 20, RateWindow: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false)
			if err == nil || !IsNetwork(err) || !(errors.Is(err, ErrStalled) || errors.Is(err, ErrTooSlow)) {
				t.Fatalf("upload to a server that %s: %v, want a stall or too-slow network error", tc.name, err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("the upload failed after %s, want it to fail within a few 300ms windows, not at the deadline", el)
			}
			if n := indexPuts.Load(); n != 0 {
				t.Errorf("the index was PUT %d times after a failed asset", n)
			}
		})
	}
}
