package fakegithub

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestWeakETagChangesWithDownloads(t *testing.T) {
	s := New()
	defer s.Close()
	s.Publish("o", "r", Release{Tag: "t1", Assets: []Asset{{Name: "a", Data: []byte("x")}}})
	resp, body := get(t, s.URL()+"repos/o/r/releases/latest", nil)
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `W/"`) {
		t.Fatalf("ETag %q, want a weak one", etag)
	}
	if resp, _ := get(t, s.URL()+"repos/o/r/releases/latest", map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("unchanged: status %d, want 304", resp.StatusCode)
	}
	var rel struct {
		Assets []struct {
			Download string `json:"browser_download_url"`
		} `json:"assets"`
	}
	if err := json.Unmarshal(body, &rel); err != nil {
		t.Fatal(err)
	}
	get(t, rel.Assets[0].Download, nil)
	resp, body = get(t, s.URL()+"repos/o/r/releases/latest", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"download_count": 1`) {
		t.Errorf("after a download: status %d, want 200 with download_count 1", resp.StatusCode)
	}
}

func TestQuotaCharges304sOnlyUnauthenticated(t *testing.T) {
	s := New()
	defer s.Close()
	s.Publish("o", "r", Release{Tag: "t1"})
	s.SetQuota(3, 3)
	resp, _ := get(t, s.URL()+"repos/o/r/releases/latest", nil)
	etag := resp.Header.Get("ETag")
	get(t, s.URL()+"repos/o/r/releases/latest", map[string]string{"If-None-Match": etag})
	get(t, s.URL()+"repos/o/r/releases/latest", map[string]string{"If-None-Match": etag, "Authorization": "Bearer x"})
	if u, a := s.Quota(); u != 1 || a != 3 {
		t.Errorf("quota = %d unauthenticated, %d authenticated; want 1 (the 304 cost one) and 3 (free)", u, a)
	}
	get(t, s.URL()+"repos/o/r/releases/latest", nil)
	if resp, _ := get(t, s.URL()+"repos/o/r/releases/latest", nil); resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("quota spent: status %d remaining %q, want 403 and 0", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
}

func TestMakeLatestAndDrafts(t *testing.T) {
	s := New()
	defer s.Close()
	now := time.Now()
	s.Publish("o", "r", Release{Tag: "pinned", MakeLatest: "true", PublishedAt: now.Add(-time.Hour)})
	s.Publish("o", "r", Release{Tag: "newer", PublishedAt: now})
	s.Publish("o", "r", Release{Tag: "never", MakeLatest: "false", PublishedAt: now.Add(time.Hour)})
	s.Publish("o", "r", Release{Tag: "draft", Draft: true, PublishedAt: now.Add(2 * time.Hour)})
	_, body := get(t, s.URL()+"repos/o/r/releases/latest", nil)
	if !strings.Contains(string(body), `"tag_name": "pinned"`) {
		t.Errorf("latest is not the make_latest=true release:\n%.200s", body)
	}
	_, anon := get(t, s.URL()+"repos/o/r/releases", nil)
	_, authed := get(t, s.URL()+"repos/o/r/releases", map[string]string{"Authorization": "Bearer x"})
	if strings.Contains(string(anon), `"draft"`+`,`) || strings.Contains(string(anon), `"tag_name": "draft"`) {
		t.Error("drafts listed without a token")
	}
	if !strings.Contains(string(authed), `"tag_name": "draft"`) {
		t.Error("drafts not listed with a token")
	}
}

func TestPrivateRenameSecondaryAndCDN(t *testing.T) {
	s := New()
	defer s.Close()
	s.Publish("o", "r", Release{Tag: "t1", Assets: []Asset{{Name: "a", Data: []byte("x")}}})
	s.SetPrivate("o", "r", true)
	if resp, _ := get(t, s.URL()+"repos/o/r/releases/latest", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("private without token: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, s.URL()+"o/r/releases/download/t1/a", map[string]string{"Authorization": "Bearer x"}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("private browser URL: %d, want 404 (no session cookie)", resp.StatusCode)
	}
	s.SetPrivate("o", "r", false)

	s.SetSecondaryLimit(1, 42*time.Second)
	if resp, _ := get(t, s.URL()+"repos/o/r/releases/latest", nil); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Retry-After") != "42" {
		t.Errorf("secondary limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	s.Rename("o", "r", "o", "r2")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.URL() + "repos/o/r/releases/latest")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/repos/o/r2/releases/latest" {
		t.Errorf("renamed: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Go's client drops Authorization on a redirect to another host
	// itself, so ask the CDN directly, as a careless client would.
	s.SetDownloadHost("localhost")
	resp, err = noFollow.Get(s.URL() + "o/r2/releases/download/t1/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cdn := resp.Header.Get("Location")
	if !strings.Contains(cdn, "//localhost:") {
		t.Fatalf("download redirect to %q, want the CDN host", cdn)
	}
	if resp, _ := get(t, cdn, map[string]string{"Authorization": "Bearer x"}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("CDN with Authorization: %d, want 400", resp.StatusCode)
	}
	if resp, _ := get(t, cdn, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("CDN without Authorization: %d, want 200", resp.StatusCode)
	}
}
