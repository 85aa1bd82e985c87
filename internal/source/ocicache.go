package source

import (
	"context"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// cachedChoice is what Cached answers from: the artifact chosen last
// time, and the other usable ones then (so that an answer that skips the
// chosen one, Request.Skip, needs no network either).
type cachedChoice struct {
	Tag      string         `json:"tag"`
	Manifest []byte         `json:"manifest"`
	Others   []cachedChoice `json:"others,omitempty"`
}

// cached answers req from the choices of the last lookup: the newest not
// skipped. A choice it cannot resolve from the cache fails the answer, as
// the one chosen always did.
func (o *OCI) cached(ctx context.Context, req Request, t Target, ref sourceref.Ref, c cachedChoice) (*Release, error) {
	var best *Release
	var skipped []string
	for _, ch := range append([]cachedChoice{{Tag: c.Tag, Manifest: c.Manifest}}, c.Others...) {
		if cand, err := artifactCandidate(req, t, ref, ch.Tag, ch.Manifest); err == nil && req.Skips(cand.Tag) {
			skipped = append(skipped, cand.Tag)
			continue
		}
		rel, err := o.resolve(ctx, req, t, ref, ch.Tag, ch.Manifest, true)
		if err != nil {
			return nil, err
		}
		if best == nil || newer(rel, best) {
			best = rel
		}
	}
	if best == nil {
		return nil, skippedError(req, ociWhere(ref), skipped)
	}
	return best, nil
}

// ociWhere is ref as messages name it.
func ociWhere(ref sourceref.Ref) string {
	if ref.Tag != "" {
		return ref.URL + ":" + ref.Tag
	}
	return ref.URL
}
