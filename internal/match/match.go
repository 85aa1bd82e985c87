// Package match decides whether an extension is recommended for a host: a
// pure function from one manifest entry and the host facts to a decision,
// the reasons for it and every comparison made on the way. The comparisons
// themselves are the rule kinds' (internal/rules).
package match

import (
	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/rules"
)

// Check is one rule compared with the facts.
type Check = rules.Check

// Result is the decision for one entry.
type Result struct {
	Recommended bool     `json:"recommended"`
	Reasons     []string `json:"reasons"`
	Checks      []Check  `json:"checks"`
}

// Evaluate applies every rule of e to f, kind by kind in the registry's
// order. Any one match recommends.
func Evaluate(e *manifest.Entry, f *facts.Facts) Result {
	var r Result
	for _, k := range rules.Kinds {
		for _, v := range k.Values(&e.Rules) {
			c := k.Match(v, &f.Facts)
			r.Checks = append(r.Checks, c)
			if c.Matched {
				r.Recommended = true
				r.Reasons = append(r.Reasons, c.Reason())
			}
		}
	}
	if r.Reasons == nil {
		r.Reasons = []string{}
	}
	return r
}
