package engine

import (
	"encoding/json"
	"os"
	"slices"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
)

// snapshot is the last resolved release of every extension for one
// target, with when it was checked, in one file: list's freshness window
// is judged per entry from it, and a fresh list reads one file instead of
// three per extension. It is a cache: any mismatch with the request (a
// changed url, mirrors, image or prerelease) or a read error means a
// lookup (offline: the source's own cache).
type snapshot struct {
	Format   int                      `json:"format"`
	Releases map[string]snapshotEntry `json:"releases"`
}

type snapshotEntry struct {
	Request   source.Request  `json:"request"`
	Release   *source.Release `json:"release"`
	CheckedAt time.Time       `json:"checked_at"`
}

const snapshotFormat = 2

// snapshotFile is the in-root path of the release snapshot for this
// host's codename and architecture.
func (e *Engine) snapshotFile() string {
	t := e.target()
	return rootfs.CacheDir + "/releases-" + t.Codename + "_" + t.Arch + ".json"
}

func (e *Engine) snapshotPath() string { return e.Root.Path(e.snapshotFile()) }

func (e *Engine) loadSnapshot() *snapshot {
	b, err := os.ReadFile(e.snapshotPath())
	if err != nil {
		return nil
	}
	var s snapshot
	if json.Unmarshal(b, &s) != nil || s.Format != snapshotFormat {
		return nil
	}
	return &s
}

// lookup returns the snapshot's release for req and when it was checked,
// if it was resolved for the same request.
func (s *snapshot) lookup(req source.Request) (*source.Release, time.Time, bool) {
	if s == nil {
		return nil, time.Time{}, false
	}
	ent, ok := s.Releases[req.Name]
	if !ok || ent.Release == nil || !sameRequest(ent.Request, req) {
		return nil, time.Time{}, false
	}
	return ent.Release, ent.CheckedAt, true
}

func sameRequest(a, b source.Request) bool {
	return a.Name == b.Name && a.URL == b.URL && a.ImageName() == b.ImageName() &&
		a.Prerelease == b.Prerelease && slices.Equal(a.Mirrors, b.Mirrors) && a.Version == b.Version
}

// saveSnapshot merges the successful answers into the snapshot. Errors
// are ignored: an unprivileged list cannot write the cache.
func (e *Engine) saveSnapshot(reqs []source.Request, res map[string]source.Result, now time.Time) {
	s := e.loadSnapshot()
	if s == nil {
		s = &snapshot{Format: snapshotFormat}
	}
	if s.Releases == nil {
		s.Releases = map[string]snapshotEntry{}
	}
	changed := false
	for _, q := range reqs {
		if r := res[q.Name]; r.Err == nil && r.Release != nil {
			s.Releases[q.Name] = snapshotEntry{Request: q, Release: r.Release, CheckedAt: now}
			changed = true
		}
	}
	if !changed {
		return
	}
	b, err := json.Marshal(s)
	if err != nil {
		return
	}
	if err := e.Root.WriteFile(e.snapshotFile(), b, 0o644); err != nil {
		e.log().Debug("saving the release snapshot: " + err.Error())
	}
}
