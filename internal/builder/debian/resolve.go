package debian

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Universe is a set of packages by name with the virtual names they
// provide: what an archive offers, or what a root has installed.
type Universe struct {
	byName    map[string][]*Package // newest first
	providers map[string][]provided
}

type provided struct {
	pkg     *Package
	version *version.Version // nil for an unversioned Provides
}

// NewUniverse indexes pkgs. A Provides field that does not parse is an
// error naming the file and line.
func NewUniverse(pkgs []*Package) (*Universe, error) {
	u := &Universe{byName: map[string][]*Package{}, providers: map[string][]provided{}}
	for _, p := range pkgs {
		u.byName[p.Name] = append(u.byName[p.Name], p)
		prov, err := p.Relations(FieldProvides)
		if err != nil {
			return nil, err
		}
		for _, rel := range prov.Relations {
			for _, poss := range rel.Possibilities {
				pv := provided{pkg: p}
				if poss.Version != nil && poss.Version.Operator == "=" {
					v, err := version.Parse(poss.Version.Number)
					if err == nil {
						pv.version = &v
					}
				}
				u.providers[poss.Name] = append(u.providers[poss.Name], pv)
			}
		}
	}
	for _, list := range u.byName {
		sort.SliceStable(list, func(i, j int) bool { return version.Compare(list[i].Version, list[j].Version) > 0 })
	}
	return u, nil
}

// Candidate is the newest version of name, as apt picks it when every
// suite has the same priority; nil when name is not a real package here.
func (u *Universe) Candidate(name string) *Package {
	if l := u.byName[name]; len(l) > 0 {
		return l[0]
	}
	return nil
}

// Versions lists every version of name, newest first.
func (u *Universe) Versions(name string) []*Package { return u.byName[name] }

// Len is the number of package names.
func (u *Universe) Len() int { return len(u.byName) }

// satisfiedBy returns a package of u that satisfies poss (by name and
// version, or by Provides), or nil. With candidateOnly, only the newest
// version of a real package counts (apt installs candidates only).
func (u *Universe) satisfiedBy(poss dependency.Possibility, candidateOnly bool) *Package {
	versions := u.byName[poss.Name]
	if candidateOnly && len(versions) > 0 {
		versions = versions[:1]
	}
	for _, p := range versions {
		if poss.Version == nil || poss.Version.SatisfiedBy(p.Version) {
			return p
		}
	}
	var best *Package
	for _, pv := range u.providers[poss.Name] {
		if candidateOnly && u.Candidate(pv.pkg.Name) != pv.pkg {
			continue
		}
		if poss.Version != nil && (pv.version == nil || !poss.Version.SatisfiedBy(*pv.version)) {
			continue
		}
		if best == nil || providerBefore(pv.pkg, best) {
			best = pv.pkg
		}
	}
	return best
}

// providerBefore orders the providers of a virtual package the way apt
// prefers them: higher priority first, then by name for a stable result.
func providerBefore(a, b *Package) bool {
	ra, rb := priorityRank(a.Priority), priorityRank(b.Priority)
	if ra != rb {
		return ra < rb
	}
	return a.Name < b.Name
}

func priorityRank(p string) int {
	switch p {
	case "required":
		return 0
	case "important":
		return 1
	case "standard":
		return 2
	case "optional":
		return 3
	}
	return 4
}

// Resolution is what must be added to a base so that a package is
// installed, as apt-get install would add it.
type Resolution struct {
	// Packages to unpack, sorted by name.
	Packages []*Package
	// Why maps each package name to the first relation that pulled it in
	// ("hello" for the root, "hello Depends libfoo (>= 1)").
	Why map[string]string
	// SkippedRecommends lists recommendations that could not be installed
	// (apt skips them too).
	SkippedRecommends []string
}

// ErrInBase is returned when the requested package is already installed in
// the base: the extension would be empty.
var ErrInBase = errors.New("already installed in the base")

// ResolveOptions tunes Resolve.
type ResolveOptions struct {
	// NoRecommends leaves Recommends out, like apt's --no-install-recommends.
	NoRecommends bool
}

// Resolve computes what to add to base (the installed packages) so that
// root and everything it needs is installed, taking packages from avail.
// Pre-Depends and Depends must be satisfied; Recommends are added when
// installable, as apt does by default. For an alternative (a | b), what
// is already installed or chosen wins, else the first installable one.
// A dependency that would need a newer version of a base package is an
// error: an extension cannot upgrade its base.
func Resolve(avail, base *Universe, root string, opts ResolveOptions) (*Resolution, error) {
	if p := base.Candidate(root); p != nil {
		return nil, fmt.Errorf("package %s: %w (%s)", root, ErrInBase, p.Version)
	}
	rootPkg := avail.Candidate(root)
	if rootPkg == nil {
		return nil, fmt.Errorf("package %s: not in the archive", root)
	}
	chosen := &Universe{byName: map[string][]*Package{}, providers: map[string][]provided{}}
	res := &Resolution{Why: map[string]string{}}
	queue := []*Package{}
	add := func(p *Package, why string) error {
		if _, ok := chosen.byName[p.Name]; ok {
			return nil
		}
		one, err := NewUniverse([]*Package{p})
		if err != nil {
			return err
		}
		chosen.byName[p.Name] = []*Package{p}
		for k, v := range one.providers {
			chosen.providers[k] = append(chosen.providers[k], v...)
		}
		res.Why[p.Name] = why
		queue = append(queue, p)
		return nil
	}
	if err := add(rootPkg, root); err != nil {
		return nil, err
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		fields := []string{FieldPreDepends, FieldDepends}
		if !opts.NoRecommends {
			fields = append(fields, FieldRecommends)
		}
		for _, field := range fields {
			dep, err := p.Relations(field)
			if err != nil {
				return nil, err
			}
			for _, rel := range dep.Relations {
				pick, err := choose(avail, base, chosen, rel)
				desc := fmt.Sprintf("%s %s %s", p.Name, field, rel)
				if err != nil {
					if field == FieldRecommends {
						res.SkippedRecommends = append(res.SkippedRecommends, desc+": "+err.Error())
						continue
					}
					return nil, fmt.Errorf("%s: %w", desc, err)
				}
				if pick != nil {
					if err := add(pick, desc); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	for _, l := range chosen.byName {
		res.Packages = append(res.Packages, l[0])
	}
	slices.SortFunc(res.Packages, func(a, b *Package) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}

// choose returns the package to add for rel, nil when base or what is
// already chosen satisfies it.
func choose(avail, base, chosen *Universe, rel dependency.Relation) (*Package, error) {
	for _, poss := range rel.Possibilities {
		if base.satisfiedBy(poss, false) != nil || chosen.satisfiedBy(poss, false) != nil {
			return nil, nil
		}
	}
	var problems []string
	for _, poss := range rel.Possibilities {
		p := avail.satisfiedBy(poss, true)
		if p == nil {
			problems = append(problems, fmt.Sprintf("%s: no installable version", poss.Name))
			continue
		}
		if old := base.Candidate(p.Name); old != nil {
			problems = append(problems, fmt.Sprintf("%s: the base has %s, an upgrade to %s would be needed", p.Name, old.Version, p.Version))
			continue
		}
		return p, nil
	}
	return nil, errors.New(strings.Join(problems, "; "))
}
