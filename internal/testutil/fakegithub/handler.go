package fakegithub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const rateLimitDoc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"

// Handler serves the fake API and downloads.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}/releases/latest", s.api(s.handleLatest))
	mux.HandleFunc("GET /repos/{owner}/{repo}/releases", s.api(s.handleList))
	mux.HandleFunc("GET /repos/{owner}/{repo}/releases/assets/{id}", s.api(s.handleAsset))
	mux.HandleFunc("GET /{owner}/{repo}/releases/download/{tag}/{name}", s.handleBrowserDownload)
	mux.HandleFunc("GET /objects/{id}", s.handleObject)
	// GitHub Enterprise Server serves the same API under /api/v3/.
	ghes := http.StripPrefix("/api/v3", mux)
	return s.record(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v3/") {
			ghes.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
}

// statusRecorder remembers the status code for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			s.mu.Lock()
			s.requests = append(s.requests, Request{
				Method: r.Method, Host: r.Host, Path: r.URL.Path,
				Authorization: r.Header.Get("Authorization"), Status: rec.status,
			})
			s.mu.Unlock()
		}()
		s.wait(r, s.currentFaults().Latency)
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) currentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// wait sleeps for d unless the request or the server ends first.
func (s *Server) wait(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	case <-s.closing:
	}
}

// stall blocks until the client gives up or the server closes.
func (s *Server) stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.closing:
	}
}

// reply is an API answer before faults and conditional requests apply.
// A non-empty location makes it a redirect without body.
type reply struct {
	status   int
	body     any
	location string
}

func (s *Server) api(handle func(*http.Request) reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := s.currentFaults()
		authed := r.Header.Get("Authorization") != ""
		key := r.PathValue("owner") + "/" + r.PathValue("repo")
		s.mu.Lock()
		s.stats.API++
		s.stats.APIByRepo[key]++
		remaining, quotaOK := s.spend(authed)
		renamed, isRenamed := s.renames[key]
		hidden := s.private[key] && !authed
		s.mu.Unlock()
		if s.secondaryLimit(w) {
			return
		}
		if isRenamed {
			loc := strings.Replace(r.URL.Path, "/repos/"+key+"/", "/repos/"+renamed+"/", 1)
			w.Header().Set("Location", loc)
			writeJSON(w, http.StatusMovedPermanently, map[string]string{"message": "Moved Permanently", "url": loc})
			return
		}
		if hidden {
			writeJSON(w, http.StatusNotFound, notFound().body)
			return
		}
		if !quotaOK {
			f.API = FaultRateLimit
		}

		reset := f.RateLimitReset
		if reset.IsZero() {
			reset = s.created.Add(time.Hour)
		}
		limit := 60
		if authed {
			limit = 5000
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
		h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")

		switch f.API {
		case FaultRateLimit, FaultTooMany:
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Used", strconv.Itoa(limit))
			status := http.StatusForbidden
			if f.API == FaultTooMany {
				status = http.StatusTooManyRequests
			}
			writeJSON(w, status, map[string]string{
				"message":           "API rate limit exceeded for 127.0.0.1.",
				"documentation_url": rateLimitDoc + "#about-the-primary-rate-limit",
			})
			return
		case FaultServerError:
			// GitHub sends the rate headers on its 5xx answers too; without
			// Remaining, go-github would remember "0 left" and refuse
			// every later request itself.
			h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-1))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "Server Error"})
			return
		case FaultStall:
			s.stall(r)
			return
		}
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Used", strconv.Itoa(limit-remaining))

		rep := handle(r)
		if rep.location != "" {
			h.Set("Location", rep.location)
			w.WriteHeader(rep.status)
			return
		}
		body, err := json.MarshalIndent(rep.body, "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		if rep.status == http.StatusOK {
			sum := sha256.Sum256(body)
			etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
			h.Set("ETag", etag)
			h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
			if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
				s.mu.Lock()
				s.stats.NotModified++
				s.refund(authed)
				s.mu.Unlock()
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		s.writeBody(w, r, rep.status, bytes.NewReader(body), int64(len(body)), f.API)
	}
}

func etagMatch(header, etag string) bool {
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || strings.TrimPrefix(c, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeBody sends size bytes of body with status, honouring the body faults
// (cut short, stalled body).
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, status int, body io.Reader, size int64, f Fault) {
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(status)
	switch f {
	case FaultCutShort, FaultStallBody:
		_, _ = io.CopyN(w, body, size/2)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if f == FaultStallBody {
			s.stall(r)
		}
		// Abort the connection so the client sees fewer bytes than declared.
		panic(http.ErrAbortHandler)
	}
	_, _ = io.Copy(w, body)
}

func notFound() reply {
	return reply{status: http.StatusNotFound, body: map[string]string{
		"message":           "Not Found",
		"documentation_url": "https://docs.github.com/rest",
		"status":            "404",
	}}
}

func (s *Server) handleLatest(r *http.Request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	rel := s.latest(r.PathValue("owner") + "/" + r.PathValue("repo"))
	if rel == nil {
		return notFound()
	}
	return reply{status: http.StatusOK, body: s.releaseJSON(r, rel)}
}

func (s *Server) handleList(r *http.Request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := r.PathValue("owner") + "/" + r.PathValue("repo")
	if _, ok := s.repos[key]; !ok {
		return notFound()
	}
	out := []map[string]any{}
	authed := r.Header.Get("Authorization") != ""
	for _, rel := range s.sorted(key) {
		if rel.Draft && !authed {
			continue
		}
		out = append(out, s.releaseJSON(r, rel))
	}
	return reply{status: http.StatusOK, body: out}
}

func (s *Server) handleAsset(r *http.Request) reply {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return notFound()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.assets[id]
	if !ok || a.owner != r.PathValue("owner") || a.repo != r.PathValue("repo") {
		return notFound()
	}
	if r.Header.Get("Accept") == "application/octet-stream" {
		return reply{status: http.StatusFound, location: s.downloadBase(r) + "objects/" + itoa(a.id)}
	}
	return reply{status: http.StatusOK, body: s.assetJSON(r, a)}
}

// handleBrowserDownload is github.com/OWNER/REPO/releases/download/TAG/NAME:
// a 302 to the object storage, not counted as an API request.
func (s *Server) handleBrowserDownload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var found *asset
	key := r.PathValue("owner") + "/" + r.PathValue("repo")
	for _, rel := range s.repos[key] {
		if rel.Tag != r.PathValue("tag") || rel.Draft || s.private[key] {
			continue
		}
		for _, a := range rel.assets {
			if a.Name == r.PathValue("name") {
				found = a
			}
		}
	}
	s.mu.Unlock()
	if found == nil {
		http.NotFound(w, r)
		return
	}
	http.Redirect(w, r, s.downloadBase(r)+"objects/"+itoa(found.id), http.StatusFound)
}

// handleObject serves the bytes of an asset, like objects.githubusercontent.com.
func (s *Server) handleObject(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f := s.currentFaults()
	s.mu.Lock()
	a, ok := s.assets[id]
	s.stats.Downloads++
	cdn := s.downloadHost != ""
	if ok {
		a.count++
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if cdn && r.Header.Get("Authorization") != "" {
		http.Error(w, "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>", http.StatusBadRequest)
		return
	}
	switch f.Download {
	case FaultBare429:
		w.Header().Set("Retry-After", "30")
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
		return
	case FaultDrip:
		w.Header().Set("Content-Length", strconv.FormatInt(a.size, 10))
		w.WriteHeader(http.StatusOK)
		for {
			_, _ = w.Write([]byte{0})
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			select {
			case <-time.After(s.dripEvery()):
			case <-r.Context().Done():
				return
			case <-s.closing:
				return
			}
		}
	case FaultRateLimit, FaultTooMany:
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(s.created.Add(time.Hour).Unix(), 10))
		status := http.StatusForbidden
		if f.Download == FaultTooMany {
			status = http.StatusTooManyRequests
		}
		http.Error(w, "rate limited", status)
		return
	case FaultServerError:
		http.Error(w, "server error", http.StatusInternalServerError)
		return
	case FaultStall:
		s.stall(r)
		return
	}
	var body io.Reader = bytes.NewReader(a.Data)
	if a.Path != "" {
		file, err := os.Open(a.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer file.Close()
		body = file
	}
	if f.Download == FaultWrongBytes {
		body = flipReader{body}
	}
	w.Header().Set("Content-Type", a.ContentType)
	s.writeBody(w, r, http.StatusOK, body, a.size, f.Download)
}

// flipReader inverts every byte: same length, wrong content.
type flipReader struct{ r io.Reader }

func (f flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	for i := range p[:n] {
		p[i] = ^p[i]
	}
	return n, err
}

// apiBase is the API base URL as the client addressed it.
func apiBase(r *http.Request) string {
	return scheme(r) + "://" + r.Host + "/"
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// downloadBase is where asset bytes are served. Caller holds s.mu.
func (s *Server) downloadBase(r *http.Request) string {
	if s.downloadHost == "" {
		return apiBase(r)
	}
	_, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		return scheme(r) + "://" + s.downloadHost + "/"
	}
	return scheme(r) + "://" + net.JoinHostPort(s.downloadHost, port) + "/"
}
