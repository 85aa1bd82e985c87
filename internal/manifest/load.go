package manifest

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/rules"
	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Files returns the manifest files under root in merge order: vendor,
// local, then drop-ins in lexical order. Missing files are left out.
func Files(root rootfs.Root) []string {
	var files []string
	for _, p := range []string{rootfs.VendorManifest, rootfs.LocalManifest} {
		if _, err := os.Stat(root.Path(p)); err == nil {
			files = append(files, p)
		}
	}
	matches, _ := filepath.Glob(root.Path(rootfs.DropinDir) + "/*.toml")
	sort.Strings(matches)
	for _, m := range matches {
		files = append(files, root.Rel(m))
	}
	return files
}

// Load reads and merges every manifest under root. It always returns a Set
// with what could be read. A file that cannot be decoded is left out whole;
// an entry whose values are wrong is left out alone (Set.Invalid says why)
// and the rest of its file is used. Either adds to the returned *Error.
// Warnings (unknown keys, unknown virt_env names) come back separately.
func Load(root rootfs.Root) (*Set, []Problem, error) {
	set := &Set{Entries: map[string]*Entry{}, Invalid: map[string][]Problem{}}
	var warnings, errs []Problem
	for _, file := range Files(root) {
		data, err := os.ReadFile(root.Path(file))
		if err != nil {
			errs = append(errs, Problem{File: file, Message: err.Error()})
			continue
		}
		entries, ws, es := Parse(file, data)
		warnings = append(warnings, ws...)
		errs = append(errs, es...)
		if fileBroken(es) {
			continue
		}
		set.Files = append(set.Files, file)
		local := file != rootfs.VendorManifest
		for _, e := range entries {
			e.Local = local
			set.add(e)
		}
		// A later, broken table of a name hides the earlier one: using the
		// vendor's table would silently ignore what the operator wrote.
		for _, p := range es {
			delete(set.Entries, p.Entry)
			set.Invalid[p.Entry] = append(set.Invalid[p.Entry], p)
		}
	}
	for _, name := range set.Names() {
		e := set.Entries[name]
		if e.URL == "" {
			p := Problem{File: e.Source, Line: e.Line, Key: name + ".url", Entry: name, Message: "missing url"}
			errs = append(errs, p)
			set.Invalid[name] = append(set.Invalid[name], p)
			delete(set.Entries, name)
		}
	}
	if len(errs) > 0 {
		return set, warnings, &Error{Problems: errs}
	}
	return set, warnings, nil
}

// fileBroken reports whether problems concern the whole file rather than
// single entries.
func fileBroken(errs []Problem) bool {
	for _, p := range errs {
		if p.Entry == "" {
			return true
		}
	}
	return false
}

// add merges e into the set: a later table replaces an earlier one whole,
// except a table that only sets "enabled", which only changes that flag.
func (s *Set) add(e *Entry) {
	prev := s.Entries[e.Name]
	if prev != nil && e.onlyEnabled() {
		merged := *prev
		merged.Enabled = e.Enabled
		merged.Local = true
		s.Entries[e.Name] = &merged
		return
	}
	s.Entries[e.Name] = e
}

func (e *Entry) onlyEnabled() bool {
	return e.Enabled != nil && e.URL == "" && e.Rules.Empty() && len(e.Conflicts) == 0 &&
		e.Update == "" && e.Asset == "" && len(e.Keys) == 0 && e.Signature == "" && len(e.Mirrors) == 0 && !e.Prerelease &&
		e.AllowShadow == nil && len(e.AllowEtc) == 0 && e.Probation == nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.\-]*$`)

// Parse decodes one manifest file. file is used in messages only. The
// valid entries come back sorted by name. An error with Entry set leaves out
// that entry only; an error without it means the file must not be used.
func Parse(file string, data []byte) (entries []*Entry, warnings, errs []Problem) {
	pos := indexPositions(data)
	raw, warnings, errs := decode(file, data, pos)
	if fileBroken(errs) {
		return nil, warnings, errs
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := raw[n]
		e.Name = n
		e.Source = file
		e.Line = pos.table(n)
		valid := true
		for _, p := range validate(&e) {
			p.File = file
			p.Entry = n
			p.Line, p.Column = pos.key(n, p.Key)
			if p.Key == "" {
				p.Key = n
			} else {
				p.Key = n + "." + p.Key
			}
			if p.Warning {
				warnings = append(warnings, p)
				continue
			}
			valid = false
			errs = append(errs, p)
		}
		if valid {
			entries = append(entries, &e)
		}
	}
	if fileBroken(errs) {
		// A table named "" cannot be left out by name: its problem is the
		// file's (found by the fuzzer).
		return nil, warnings, errs
	}
	return entries, warnings, errs
}

// validate checks the values of one entry; Problems name the bare key.
func validate(e *Entry) []Problem {
	var ps []Problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if !nameRE.MatchString(e.Name) {
		bad("", "invalid extension name %q (want a Debian package name)", e.Name)
	}
	if e.URL != "" {
		if ref, err := sourceref.Parse(e.URL); err != nil {
			bad("url", "%v", err)
		} else if ref.Kind == sourceref.KindLocal && !strings.HasPrefix(e.URL, "/") {
			bad("url", "local image path %q must be absolute", e.URL)
		}
	}
	for _, m := range e.Mirrors {
		if _, err := sourceref.Parse(m); err != nil {
			bad("mirrors", "%v", err)
		}
	}
	for _, k := range rules.Kinds {
		for _, v := range k.Values(&e.Rules) {
			if msg, warning := k.Validate(v); msg != "" {
				ps = append(ps, Problem{Key: k.Key, Message: msg, Warning: warning})
			}
		}
	}
	for _, c := range e.Conflicts {
		if !nameRE.MatchString(c) {
			bad("conflicts", "invalid extension name %q", c)
		}
	}
	if _, err := ParseAction(e.Update); err != nil {
		bad("update", "%v", err)
	}
	if e.Signature != "" && e.Signature != "required" && e.Signature != "if-present" && e.Signature != "none" {
		bad("signature", "want required, if-present or none, got %q", e.Signature)
	}
	for _, k := range e.Keys {
		if strings.TrimSpace(k) == "" {
			bad("keys", "empty key name")
		}
	}
	for _, a := range e.AllowEtc {
		if c := path.Clean("/" + strings.TrimPrefix(a, "/")); a == "" || strings.Contains(a, "..") ||
			(strings.HasPrefix(a, "/") && !strings.HasPrefix(c, "/etc/") && !strings.HasPrefix(c, "/var/")) {
			bad("allow_etc", "invalid path %q (a path under /etc, e.g. \"sudoers.d/foo\", or an absolute /etc or /var path)", a)
		}
	}
	if e.Asset != "" && (strings.ContainsAny(e.Asset, "/ \t") || e.Asset == "." || e.Asset == "..") {
		bad("asset", "invalid image name %q", e.Asset)
	}
	return ps
}
