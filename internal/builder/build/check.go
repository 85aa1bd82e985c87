package build

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spamtagger/sysextd/internal/builder/debian"

	"pault.ag/go/debian/version"
)

// CheckResult says whether a new release is needed and why.
type CheckResult struct {
	Rebuild bool
	Reasons []string
}

// Compare decides whether what would be built now (want: per DIST_ARCH
// key, package -> binary version) differs from the last release. Versions
// are compared as Debian binary versions (2.10-5+b1 is a new binary of
// source 2.10-5; 1:2.0 equals 1:2.0), never against source versions, so
// a binNMU or a +debNNuN update rebuilds exactly once.
//
// A release written by the template has only package_versions: then only
// the package itself is compared.
func Compare(m *Metadata, last *ReleaseJSON, want map[string]map[string]string) CheckResult {
	var r CheckResult
	if last == nil {
		return CheckResult{Rebuild: true, Reasons: []string{"no release yet"}}
	}
	for _, dist := range m.Dists {
		for _, arch := range m.Architectures {
			key := Key(dist, arch)
			now := want[key]
			old, ok := last.PackageVersions[key]
			if !ok {
				r.Reasons = append(r.Reasons, fmt.Sprintf("%s: not in release %s", key, last.Version))
				continue
			}
			oldSet := last.Packages[key]
			if oldSet == nil {
				oldSet = map[string]string{m.Package: old}
				now = map[string]string{m.Package: now[m.Package]}
			}
			names := map[string]bool{}
			for n := range now {
				names[n] = true
			}
			for n := range oldSet {
				names[n] = true
			}
			sorted := make([]string, 0, len(names))
			for n := range names {
				sorted = append(sorted, n)
			}
			sort.Strings(sorted)
			for _, n := range sorted {
				a, inOld := oldSet[n]
				b, inNew := now[n]
				switch {
				case !inOld:
					r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %s %s is a new dependency", key, n, b))
				case !inNew:
					r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %s %s is no longer needed", key, n, a))
				case !sameVersion(a, b):
					r.Reasons = append(r.Reasons, fmt.Sprintf("%s: %s %s -> %s", key, n, a, b))
				}
			}
		}
	}
	r.Rebuild = len(r.Reasons) > 0
	return r
}

func sameVersion(a, b string) bool {
	va, errA := version.Parse(a)
	vb, errB := version.Parse(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return version.Compare(va, vb) == 0
}

// Want resolves, for every dist and arch of o.Metadata, the packages a
// build would put into the image (name -> version), without downloading
// any .deb.
func Want(ctx context.Context, o Options) (map[string]map[string]string, error) {
	m := o.Metadata
	out := map[string]map[string]string{}
	for _, dist := range m.Dists {
		base, err := o.baseFor(dist)
		if err != nil {
			return nil, err
		}
		for _, arch := range m.Architectures {
			avail, err := o.Archive.Universe(ctx, dist, m.Component, arch)
			if err != nil {
				return nil, err
			}
			res, err := debian.Resolve(avail, base.Installed, m.Package, debian.ResolveOptions{NoRecommends: o.NoRecommends})
			if err != nil {
				return nil, fmt.Errorf("resolving %s for %s %s: %w", m.Package, dist, arch, err)
			}
			set := map[string]string{}
			for _, p := range res.Packages {
				set[p.Name] = p.Version.String()
			}
			out[Key(dist, arch)] = set
		}
	}
	return out, nil
}

// LoadReleaseJSON reads a release.json.
func LoadReleaseJSON(data []byte, name string) (*ReleaseJSON, error) {
	var r ReleaseJSON
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if r.PackageVersions == nil {
		return nil, fmt.Errorf("%s: no package_versions", name)
	}
	return &r, nil
}
