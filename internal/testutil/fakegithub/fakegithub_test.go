package fakegithub

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp, b
}

func TestLatestSkipsDraftAndPrerelease(t *testing.T) {
	s := New()
	defer s.Close()
	now := time.Now()
	s.Publish("o", "r", Release{Tag: "old", PublishedAt: now.Add(-2 * time.Hour)})
	s.Publish("o", "r", Release{Tag: "good", PublishedAt: now.Add(-time.Hour),
		Assets: []Asset{{Name: "a.txt", Data: []byte("hello")}}})
	s.Publish("o", "r", Release{Tag: "pre", Prerelease: true, PublishedAt: now})
	s.Publish("o", "r", Release{Tag: "draft", Draft: true, PublishedAt: now})

	resp, body := get(t, s.URL()+"repos/o/r/releases/latest", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var rel struct {
		Tag    string `json:"tag_name"`
		Assets []struct {
			ID       int64  `json:"id"`
			Size     int64  `json:"size"`
			Digest   string `json:"digest"`
			URL      string `json:"url"`
			Download string `json:"browser_download_url"`
		} `json:"assets"`
	}
	if err := json.Unmarshal(body, &rel); err != nil {
		t.Fatal(err)
	}
	if got, want := rel.Tag, "good"; got != want {
		t.Errorf("latest tag: got %q, want %q", got, want)
	}
	if len(rel.Assets) != 1 {
		t.Fatalf("got %d assets, want 1", len(rel.Assets))
	}
	a := rel.Assets[0]
	if got, want := a.Digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; got != want {
		t.Errorf("digest: got %q, want %q", got, want)
	}
	if a.Size != 5 {
		t.Errorf("size: got %d, want 5", a.Size)
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "" {
		t.Error("no X-RateLimit-Remaining header")
	}

	// Conditional request.
	resp2, _ := get(t, s.URL()+"repos/o/r/releases/latest", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
	if got, want := resp2.StatusCode, http.StatusNotModified; got != want {
		t.Errorf("conditional: got %d, want %d", got, want)
	}

	// Asset download through the API redirect, and through the browser URL.
	for _, u := range []string{a.URL, a.Download} {
		resp, body := get(t, u, map[string]string{"Accept": "application/octet-stream"})
		if resp.StatusCode != http.StatusOK || string(body) != "hello" {
			t.Errorf("GET %s: got %d %q, want 200 %q", u, resp.StatusCode, body, "hello")
		}
	}
	st := s.Stats()
	if got, want := st.API, 3; got != want {
		t.Errorf("API requests: got %d, want %d", got, want)
	}
	if st.NotModified != 1 || st.Downloads != 2 {
		t.Errorf("stats: got %+v, want 1 not-modified and 2 downloads", st)
	}
}

func TestFaults(t *testing.T) {
	s := New()
	defer s.Close()
	s.Publish("o", "r", Release{Tag: "t", Assets: []Asset{{Name: "x", Data: []byte(strings.Repeat("x", 1000))}}})
	tests := []struct {
		name   string
		fault  Fault
		status int
	}{
		{"rate limit", FaultRateLimit, http.StatusForbidden},
		{"too many", FaultTooMany, http.StatusTooManyRequests},
		{"server error", FaultServerError, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetAPIFault(tt.fault)
			defer s.SetAPIFault(FaultNone)
			resp, _ := get(t, s.URL()+"repos/o/r/releases/latest", nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	t.Run("cut short", func(t *testing.T) {
		s.SetDownloadFault(FaultCutShort)
		defer s.SetDownloadFault(FaultNone)
		resp, err := http.Get(s.URL() + "o/r/releases/download/t/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil || n >= 1000 {
			t.Errorf("got %d bytes and error %v, want fewer bytes and an error", n, err)
		}
	})
}

// TestTLS: NewTLS speaks HTTP/2 over TLS, as api.github.com does, and
// hands out https download URLs that answer on the same connection.
func TestTLS(t *testing.T) {
	s := NewTLS()
	defer s.Close()
	s.Publish("o", "r", Release{Tag: "t1", Assets: []Asset{{Name: "a.txt", Data: []byte("hello")}}})
	c := s.Client()
	resp, err := c.Get(s.URL() + "repos/o/r/releases/latest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.TLS == nil {
		t.Errorf("answered over %s (TLS %v), want HTTP/2 over TLS", resp.Proto, resp.TLS != nil)
	}
	var rel struct {
		Assets []struct {
			Download string `json:"browser_download_url"`
		} `json:"assets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rel); err != nil || len(rel.Assets) != 1 {
		t.Fatalf("release: %+v, %v", rel, err)
	}
	if !strings.HasPrefix(rel.Assets[0].Download, "https://") {
		t.Errorf("download URL %q, want https", rel.Assets[0].Download)
	}
	dl, err := c.Get(rel.Assets[0].Download)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Body.Close()
	if b, _ := io.ReadAll(dl.Body); string(b) != "hello" {
		t.Errorf("download = %q, want hello", b)
	}
	plain := New()
	defer plain.Close()
	if len(s.CertPEM()) == 0 || len(plain.CertPEM()) != 0 {
		t.Error("CertPEM: want the certificate for NewTLS only")
	}
}
