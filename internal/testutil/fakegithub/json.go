package fakegithub

import (
	"net/http"
	"time"
)

var user = map[string]any{
	"login": "github-actions[bot]", "id": 41898282, "type": "Bot", "site_admin": false,
}

// releaseJSON renders a release like the REST API does. Caller holds s.mu.
func (s *Server) releaseJSON(r *http.Request, rel *release) map[string]any {
	base := apiBase(r)
	owner, repo := r.PathValue("owner"), r.PathValue("repo")
	repoAPI := base + "repos/" + owner + "/" + repo
	html := s.downloadBase(r) + owner + "/" + repo
	assets := []map[string]any{}
	for _, a := range rel.assets {
		assets = append(assets, s.assetJSON(r, a))
	}
	published := rel.PublishedAt.UTC().Format(time.RFC3339)
	var publishedAt any = published
	if rel.Draft {
		publishedAt = nil
	}
	return map[string]any{
		"url":              repoAPI + "/releases/" + itoa(rel.id),
		"assets_url":       repoAPI + "/releases/" + itoa(rel.id) + "/assets",
		"upload_url":       base + "repos/" + owner + "/" + repo + "/releases/" + itoa(rel.id) + "/assets{?name,label}",
		"html_url":         html + "/releases/tag/" + rel.Tag,
		"id":               rel.id,
		"author":           user,
		"node_id":          "RE_fake" + itoa(rel.id),
		"tag_name":         rel.Tag,
		"target_commitish": "main",
		"name":             rel.Name,
		"draft":            rel.Draft,
		"immutable":        false,
		"prerelease":       rel.Prerelease,
		"created_at":       published,
		"updated_at":       published,
		"published_at":     publishedAt,
		"assets":           assets,
		"tarball_url":      repoAPI + "/tarball/" + rel.Tag,
		"zipball_url":      repoAPI + "/zipball/" + rel.Tag,
		"body":             "Automated build " + rel.Tag,
	}
}

// assetJSON renders an asset like the REST API does. Caller holds s.mu.
func (s *Server) assetJSON(r *http.Request, a *asset) map[string]any {
	size := a.size
	if a.PublishSize != 0 {
		size = a.PublishSize
	}
	var digest any = a.digest
	if a.PublishDigest != "" {
		digest = a.PublishDigest
	}
	if a.OmitDigest {
		digest = nil
	}
	return map[string]any{
		"url":                  apiBase(r) + "repos/" + a.owner + "/" + a.repo + "/releases/assets/" + itoa(a.id),
		"id":                   a.id,
		"node_id":              "RA_fake" + itoa(a.id),
		"name":                 a.Name,
		"label":                "",
		"uploader":             user,
		"content_type":         a.ContentType,
		"state":                "uploaded",
		"size":                 size,
		"digest":               digest,
		"download_count":       a.count,
		"created_at":           "2026-01-01T00:00:00Z",
		"updated_at":           "2026-01-01T00:00:00Z",
		"browser_download_url": s.downloadBase(r) + a.owner + "/" + a.repo + "/releases/download/" + a.tag + "/" + a.Name,
	}
}
