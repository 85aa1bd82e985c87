// Package manifest reads the TOML manifests that name the extensions an
// appliance may install: the vendor file, the local file and the local
// drop-ins, merged into one Set. Problems are reported with the file, line,
// column and key they concern.
package manifest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spamtagger/sysextd/internal/rules"
)

// Entry is one extension's table, after merging.
type Entry struct {
	Name string `toml:"-" json:"name"`
	URL  string `toml:"url" json:"url"`
	// The recommendation rules, one key per kind (internal/rules).
	rules.Rules
	Conflicts []string `toml:"conflicts" json:"conflicts,omitempty"`
	Update    string   `toml:"update" json:"update,omitempty"`
	Asset     string   `toml:"asset" json:"asset,omitempty"`
	Enabled   *bool    `toml:"enabled" json:"enabled,omitempty"`
	// Keys names the keys (keys.d file names or key ids) that may sign
	// this extension's releases; empty means the keys whose
	// NAME.extensions file names it (docs/trust.md).
	Keys []string `toml:"keys" json:"keys,omitempty"`
	// Signature is the policy: required, if-present or none; empty takes
	// the default (internal/trust.PolicyFor).
	Signature string `toml:"signature" json:"signature,omitempty"`
	// AllowShadow false refuses an image that would hide a file of the
	// base tree or of another extension (internal/shadow); nil is true.
	AllowShadow *bool `toml:"allow_shadow" json:"allow_shadow,omitempty"`
	// AllowEtc names payload paths the payload policy would refuse that
	// this extension may install ("sudoers.d/foo" is /etc/sudoers.d/foo;
	// docs/trust.md). Only a local or vendor manifest grants it.
	AllowEtc []string `toml:"allow_etc" json:"allow_etc,omitempty"`
	// Mirrors are further sources of the same releases (static mirrors,
	// OCI registries), tried in order when url fails.
	Mirrors []string `toml:"mirrors" json:"mirrors,omitempty"`
	// Prerelease lets a release marked prerelease be installed.
	Prerelease bool `toml:"prerelease" json:"prerelease,omitempty"`
	// Probation is how long the units of a change are watched before it
	// is kept (engine/probation.go); nil takes sysextd.toml's, 0 is none.
	Probation *Duration `toml:"probation" json:"probation,omitempty"`

	// Source is the in-root path of the file the table came from, Line the
	// line of its header.
	Source string `toml:"-" json:"source"`
	Line   int    `toml:"-" json:"line"`
	// Local is true when the table came from the local file or a drop-in.
	Local bool `toml:"-" json:"local"`
}

// Image is the extension image's name: asset when set, else "sysext-" + the
// key unless the key already starts with "sysext-".
func (e *Entry) Image() string {
	if e.Asset != "" {
		return e.Asset
	}
	if strings.HasPrefix(e.Name, "sysext-") {
		return e.Name
	}
	return "sysext-" + e.Name
}

// ShadowAllowed reports whether the entry's image may hide files of the
// base tree or of other extensions (allow_shadow, default true).
func (e *Entry) ShadowAllowed() bool { return e.AllowShadow == nil || *e.AllowShadow }

// ShadowUnitsAllowed reports whether a unit the image ships may hide a
// base unit and still be enabled and started: only allow_shadow = true.
func (e *Entry) ShadowUnitsAllowed() bool { return e.AllowShadow != nil && *e.AllowShadow }

// AutoEnabled reports whether auto may install the entry.
func (e *Entry) AutoEnabled() bool { return e.Enabled == nil || *e.Enabled }

// Set is every entry after merging vendor, local and drop-in files.
type Set struct {
	Entries map[string]*Entry
	// Files lists the in-root paths that were read, in merge order.
	Files []string
	// Invalid holds the entries left out because of their values, with
	// every problem found in them; they are in no other field.
	Invalid map[string][]Problem
}

// Names returns the entry names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.Entries))
	for n := range s.Entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the named entry, or nil.
func (s *Set) Get(name string) *Entry {
	if s == nil {
		return nil
	}
	return s.Entries[name]
}

// Conflicting returns the names that conflict with name, declared on either
// side, sorted.
func (s *Set) Conflicting(name string) []string {
	seen := map[string]bool{}
	if e := s.Get(name); e != nil {
		for _, c := range e.Conflicts {
			if c != name {
				seen[c] = true
			}
		}
	}
	for n, e := range s.Entries {
		if n == name {
			continue
		}
		for _, c := range e.Conflicts {
			if c == name {
				seen[n] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Problem is one finding about a manifest file. Warnings do not stop
// anything; other problems make the file unusable.
type Problem struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Key    string `json:"key,omitempty"`
	// Entry is the extension a problem leaves out, when it concerns one
	// table only; empty when the whole file is unusable.
	Entry   string `json:"entry,omitempty"`
	Message string `json:"message"`
	Warning bool   `json:"warning,omitempty"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "%s: ", p.Key)
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is returned by Load when at least one file is broken. The Set
// returned alongside it still holds every entry that could be read.
type Error struct {
	Problems []Problem
}

// Error is one line for one problem, else a heading and one problem per
// line.
func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid manifest: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid manifest (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}
