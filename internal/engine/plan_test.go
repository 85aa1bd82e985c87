package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/match"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
)

type ext struct {
	name      string
	local     bool
	conflicts []string
	enabled   *bool
	// installed version ("" = not installed), by
	installed, by string
	available     string // "" = lookup error
	recommended   bool
}

func input(exts ...ext) planInput {
	in := planInput{
		set:      &manifest.Set{Entries: map[string]*manifest.Entry{}},
		inv:      &inventory{byName: map[string]*installed{}, merged: map[string]bool{}},
		releases: map[string]source.Result{},
		match:    map[string]match.Result{},
	}
	for _, x := range exts {
		in.set.Entries[x.name] = &manifest.Entry{Name: x.name, URL: "https://github.com/o/" + x.name, Local: x.local, Conflicts: x.conflicts, Enabled: x.enabled}
		if x.installed != "" {
			in.inv.byName[x.name] = &installed{Name: x.name, Image: "sysext-" + x.name, Version: x.installed, By: x.by, Present: true}
		}
		if x.available != "" {
			in.releases[x.name] = source.Result{Release: &source.Release{Name: x.name, Version: x.available, Tag: "t" + x.available}}
		} else {
			in.releases[x.name] = source.Result{Err: errors.New("lookup failed")}
		}
		if x.recommended {
			in.match[x.name] = match.Result{Recommended: true, Reasons: []string{"virt_env kvm"}}
		}
	}
	return in
}

// summary renders a plan as "op name" lines, for compact assertions.
func summary(p *Plan) []string {
	var out []string
	for _, s := range p.Steps {
		line := string(s.Op) + " " + s.Name
		if len(s.Removes) > 0 {
			line += " -" + strings.Join(s.Removes, ",")
		}
		out = append(out, line)
	}
	for _, f := range p.Failures {
		out = append(out, "fail "+f.Name)
	}
	return out
}

var no = new(bool)

func TestPlanAuto(t *testing.T) {
	tests := []struct {
		name         string
		exts         []ext
		want         []string
		wantWarnings int
	}{
		{"installs recommended", []ext{{name: "a", available: "1", recommended: true}, {name: "b", available: "1"}}, []string{"install a"}, 0},
		{"enabled=false is never installed", []ext{{name: "a", available: "1", recommended: true, enabled: no}}, nil, 0},
		{"updates installed, keeps current", []ext{{name: "a", installed: "1", available: "2"}, {name: "b", installed: "2", available: "2"}}, []string{"update a", "none b"}, 0},
		{"never downgrades", []ext{{name: "a", installed: "2", available: "1"}}, []string{"none a"}, 1},
		{"epoch beats higher upstream", []ext{{name: "a", installed: "9.0-1", available: "1:1.0-1"}}, []string{"update a"}, 0},
		{"conflict: installed stays", []ext{{name: "a", available: "1", recommended: true, conflicts: []string{"b"}}, {name: "b", installed: "1", available: "1"}}, []string{"none b"}, 1},
		{"conflict: local wins", []ext{{name: "a", available: "1", recommended: true, conflicts: []string{"b"}}, {name: "b", available: "1", recommended: true, local: true}}, []string{"install b"}, 1},
		{"conflict: neither", []ext{{name: "a", available: "1", recommended: true}, {name: "b", available: "1", recommended: true, conflicts: []string{"a"}}}, nil, 1},
		{"lookup failure is per extension", []ext{{name: "a", recommended: true}, {name: "b", available: "1", recommended: true}}, []string{"install b", "fail a"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planAuto(input(tt.exts...))
			if got := summary(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan = %q, want %q", got, tt.want)
			}
			if len(p.Warnings) != tt.wantWarnings {
				t.Errorf("warnings = %q, want %d", p.Warnings, tt.wantWarnings)
			}
			for _, s := range p.Steps {
				if s.Op == OpInstall && s.By != store.ByAuto {
					t.Errorf("auto install of %s recorded as %q", s.Name, s.By)
				}
			}
		})
	}
}

func TestPlanInstall(t *testing.T) {
	exts := []ext{
		{name: "a", available: "1", conflicts: []string{"b"}},
		{name: "b", installed: "1", by: store.ByAuto, available: "1"},
		{name: "c", available: "1"},
		{name: "d", installed: "1", by: store.ByAuto, available: "2"},
	}
	tests := []struct {
		names []string
		want  []string
	}{
		{[]string{"a"}, []string{"install a -b"}},
		{[]string{"c", "c"}, []string{"install c"}},
		{[]string{"b"}, []string{"none b"}},
		{[]string{"a", "b"}, []string{"fail a", "fail b"}},
		{[]string{"d"}, []string{"update d"}},
	}
	for _, tt := range tests {
		p := planInstall(input(exts...), tt.names, store.ByManual)
		if got := summary(p); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("install %v = %q, want %q", tt.names, got, tt.want)
		}
	}
	p := planInstall(input(exts...), []string{"d"}, store.ByManual)
	if p.Steps[0].By != store.ByManual {
		t.Errorf("explicit install of an auto extension: by = %q, want manual", p.Steps[0].By)
	}
}

func TestPlanRemoveUpdate(t *testing.T) {
	in := input(ext{name: "a", installed: "1", available: "2"}, ext{name: "b", available: "1"})
	if got := summary(planRemove(in, []string{"a", "b"})); !reflect.DeepEqual(got, []string{"remove a", "none b"}) {
		t.Errorf("remove = %q", got)
	}
	if got := summary(planUpdate(in, nil)); !reflect.DeepEqual(got, []string{"update a"}) {
		t.Errorf("update all = %q", got)
	}
	if got := summary(planUpdate(in, []string{"b"})); !reflect.DeepEqual(got, []string{"none b"}) {
		t.Errorf("update b = %q", got)
	}
}

func TestSummary(t *testing.T) {
	net := &source.NetworkError{Err: errors.New("refused")}
	tests := []struct {
		results     []Result
		ok, bad     int
		networkOnly bool
	}{
		{[]Result{{OK: true}}, 1, 0, false},
		{[]Result{{OK: true}, {err: net}}, 1, 1, true},
		{[]Result{{err: net}, {err: errors.New("digest")}}, 0, 2, false},
	}
	for i, tt := range tests {
		ok, bad, n := Summary(tt.results)
		if ok != tt.ok || bad != tt.bad || n != tt.networkOnly {
			t.Errorf("%d: Summary = %d, %d, %v; want %d, %d, %v", i, ok, bad, n, tt.ok, tt.bad, tt.networkOnly)
		}
	}
}
