package fakegithub

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The write side of the releases API that a publisher uses: create a
// release, upload assets to it, edit it (publish a draft). Served by
// NewPublishing / PublishingHandler on top of Handler; every write needs
// an Authorization header.

var (
	eventsMu sync.Mutex
	events   = map[*Server][]string{}
)

// NewPublishing starts the fake on 127.0.0.1 with the write endpoints.
func NewPublishing() *Server {
	s := NewUnstarted()
	s.httpSrv = httptest.NewServer(s.PublishingHandler())
	return s
}

// PublishingHandler is Handler plus POST /repos/O/R/releases,
// POST /repos/O/R/releases/ID/assets?name=N, PATCH /repos/O/R/releases/ID,
// DELETE /repos/O/R/releases/ID, GET /repos/O/R/releases/tags/TAG (drafts
// included, as for a token that may write) and
// DELETE /repos/O/R/releases/assets/ID. As on GitHub, an asset is never
// overwritten: replacing one is a delete and an upload of the same name.
func (s *Server) PublishingHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /repos/{owner}/{repo}/releases", s.authed(s.handleCreate))
	mux.HandleFunc("POST /repos/{owner}/{repo}/releases/{id}/assets", s.authed(s.handleUpload))
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/releases/{id}", s.authed(s.handleEdit))
	mux.HandleFunc("DELETE /repos/{owner}/{repo}/releases/{id}", s.authed(s.handleDelete))
	mux.HandleFunc("DELETE /repos/{owner}/{repo}/releases/assets/{id}", s.authed(s.handleDeleteAsset))
	mux.HandleFunc("GET /repos/{owner}/{repo}/releases/tags/{tag}", s.authed(s.handleByTag))
	mux.Handle("/", s.Handler())
	return mux
}

// Events lists the writes the server accepted, in order:
// "create TAG draft=true", "upload TAG NAME", "edit TAG draft=false".
func (s *Server) Events() []string {
	eventsMu.Lock()
	defer eventsMu.Unlock()
	return append([]string(nil), events[s]...)
}

func (s *Server) event(e string) {
	eventsMu.Lock()
	defer eventsMu.Unlock()
	events[s] = append(events[s], e)
}

// ReleaseAssets returns the asset contents of the release tagged tag and
// whether it is still a draft; ok is false when there is no such release.
func (s *Server) ReleaseAssets(owner, repo, tag string) (assets map[string][]byte, draft, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.repos[owner+"/"+repo] {
		if r.Tag == tag {
			assets = map[string][]byte{}
			for _, a := range r.assets {
				assets[a.Name] = a.Data
			}
			return assets, r.Draft, true
		}
	}
	return nil, false, false
}

func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && !strings.HasPrefix(r.Header.Get("Authorization"), "token ") {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Requires authentication"})
			return
		}
		h(w, r)
	}
}

func (s *Server) findRelease(r *http.Request) *release {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	for _, rel := range s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")] {
		if rel.id == id {
			return rel
		}
	}
	return nil
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TagName string `json:"tag_name"`
		Name    string `json:"name"`
		Draft   bool   `json:"draft"`
	}
	if err := decodeJSON(r.Body, &req); err != nil || req.TagName == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
		return
	}
	key := r.PathValue("owner") + "/" + r.PathValue("repo")
	s.mu.Lock()
	for _, rel := range s.repos[key] {
		if rel.Tag == req.TagName {
			s.mu.Unlock()
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed: tag_name already_exists"})
			return
		}
	}
	s.nextID++
	name := req.Name
	if name == "" {
		name = req.TagName
	}
	rel := &release{Release: Release{Tag: req.TagName, Name: name, Draft: req.Draft, PublishedAt: time.Now().UTC()}, id: s.nextID}
	s.repos[key] = append(s.repos[key], rel)
	body := s.releaseJSON(r, rel)
	s.mu.Unlock()
	s.event("create " + req.TagName + " draft=" + strconv.FormatBool(req.Draft))
	writeJSON(w, http.StatusCreated, body)
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<31))
	if err != nil || name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Bad Request"})
		return
	}
	s.mu.Lock()
	rel := s.findRelease(r)
	if rel == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	for _, a := range rel.assets {
		if a.Name == name {
			s.mu.Unlock()
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed: already_exists"})
			return
		}
	}
	s.nextID++
	a := &asset{Asset: Asset{Name: name, Data: data, ContentType: r.Header.Get("Content-Type")},
		id: s.nextID, owner: r.PathValue("owner"), repo: r.PathValue("repo"), tag: rel.Tag}
	a.size, a.digest = measure(a.Asset)
	rel.assets = append(rel.assets, a)
	s.assets[a.id] = a
	body := s.assetJSON(r, a)
	tag := rel.Tag
	s.mu.Unlock()
	s.event("upload " + tag + " " + name)
	writeJSON(w, http.StatusCreated, body)
}

func (s *Server) handleEdit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Draft *bool `json:"draft"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
		return
	}
	s.mu.Lock()
	rel := s.findRelease(r)
	if rel == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	if req.Draft != nil {
		rel.Draft = *req.Draft
		if !rel.Draft {
			rel.PublishedAt = time.Now().UTC()
		}
	}
	body := s.releaseJSON(r, rel)
	tag, draft := rel.Tag, rel.Draft
	s.mu.Unlock()
	s.event("edit " + tag + " draft=" + strconv.FormatBool(draft))
	writeJSON(w, http.StatusOK, body)
}

func decodeJSON(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(v)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rel := s.findRelease(r)
	if rel == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	key := r.PathValue("owner") + "/" + r.PathValue("repo")
	var keep []*release
	for _, x := range s.repos[key] {
		if x != rel {
			keep = append(keep, x)
		}
	}
	s.repos[key] = keep
	for _, a := range rel.assets {
		delete(s.assets, a.id)
	}
	tag := rel.Tag
	s.mu.Unlock()
	s.event("delete " + tag)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleByTag(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var found *release
	for _, rel := range s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")] {
		if rel.Tag == r.PathValue("tag") {
			found = rel
		}
	}
	if found == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	body := s.releaseJSON(r, found)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleDeleteAsset(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	a := s.assets[id]
	if a == nil || a.owner != r.PathValue("owner") || a.repo != r.PathValue("repo") {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	delete(s.assets, id)
	for _, rel := range s.repos[a.owner+"/"+a.repo] {
		for i, x := range rel.assets {
			if x == a {
				rel.assets = append(rel.assets[:i:i], rel.assets[i+1:]...)
			}
		}
	}
	tag, name := a.tag, a.Name
	s.mu.Unlock()
	s.event("delete-asset " + tag + " " + name)
	w.WriteHeader(http.StatusNoContent)
}
