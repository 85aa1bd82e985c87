package engine

import (
	"time"

	"github.com/spamtagger/sysextd/internal/store"
)

// HistoryEntry is what the history file records of one result of a
// plan for verb, run by by (store.HistoryByCLI or HistoryByDaemon). ok
// is false for results that changed nothing and were not meant to (a
// step with OpNone): the history records attempted changes only.
func HistoryEntry(r Result, verb, by string, at time.Time) (e store.HistoryEntry, ok bool) {
	if r.Op == OpNone || r.Op == "" {
		return store.HistoryEntry{}, false
	}
	e = store.HistoryEntry{Time: at, Verb: verb, By: by, Name: r.Name, Op: string(r.Op), From: r.From, To: r.To, Phase: r.Phase}
	switch {
	case r.OK:
		e.Result, e.Reason = store.HistoryOK, r.Message
	case r.RolledBack:
		e.Result, e.Error = store.HistoryRolledBack, r.Error
	default:
		e.Result, e.Error = store.HistoryFailed, r.Error
	}
	return e, true
}

// RecordHistory appends every change among results to the history file.
// A failed append is logged with its text, never fatal: the change itself
// stands. The caller holds the lock (Apply's caller does).
func (e *Engine) RecordHistory(verb, by string, results []Result) {
	for _, r := range results {
		h, ok := HistoryEntry(r, verb, by, e.now())
		if !ok {
			continue
		}
		if err := e.store().AppendHistory(h); err != nil {
			e.log().Warn("recording history failed: "+err.Error(), "extension", r.Name, "err", err)
		}
	}
}
