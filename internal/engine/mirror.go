package engine

import (
	"context"

	"github.com/spamtagger/sysextd/internal/source"
)

// MirrorTarget is where Mirror copies releases: a static mirror
// directory, a web server taking uploads, or an OCI repository
// (app.ParseMirrorTarget).
type MirrorTarget interface {
	// Add copies rel, a release of the extension whose image is named
	// image, reading its assets through src; t is what it was looked up
	// for.
	Add(ctx context.Context, image string, rel *source.Release, src source.Source, t source.Target) error
	String() string
}

// Mirrored is one extension's outcome of Mirror: the release copied, or
// why it was not.
type Mirrored struct {
	Name    string
	Version string
	Tag     string
	Err     error
}

// Mirror looks up the release of each named extension (every manifest
// entry when none is named) for this host and copies it into t, one
// extension after the other. Names no manifest knows are an
// *UnknownError, and nothing is copied.
func (e *Engine) Mirror(ctx context.Context, t MirrorTarget, names []string) ([]Mirrored, error) {
	if len(names) == 0 {
		names = e.Manifests.Names()
	}
	var unknown []string
	for _, n := range names {
		if e.Manifests.Get(n) == nil {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownError{Names: unknown}
	}
	res := e.Releases(ctx, names)
	out := make([]Mirrored, 0, len(names))
	for _, n := range names {
		r := res[n]
		m := Mirrored{Name: n, Err: r.Err}
		if r.Err == nil {
			m.Version, m.Tag = r.Release.Version, r.Release.Tag
			m.Err = t.Add(ctx, e.Manifests.Get(n).Image(), r.Release, e.Source, e.target())
		}
		out = append(out, m)
	}
	return out, nil
}
