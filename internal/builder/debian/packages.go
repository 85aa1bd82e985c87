package debian

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Package is one binary package as a Packages index or dpkg status file
// describes it.
type Package struct {
	Name         string
	Version      version.Version
	Architecture string
	MultiArch    string
	Essential    bool
	Priority     string
	Source       string // source package name, "" when equal to Name
	// Archive fields (empty for dpkg status entries).
	Filename string
	Size     int64
	SHA256   string
	// Suite is the archive suite the entry came from (trixie,
	// trixie-security), set by the Archive; "" for a status file.
	Suite string
	// Mirror is the archive base URL Filename is relative to.
	Mirror string

	// Relation fields as written; parsed on demand by Relations, since an
	// index has tens of thousands of entries and few are ever looked at.
	raw   map[string]string
	where string // file:line, for errors
}

// Relation field names Relations accepts.
const (
	FieldPreDepends = "Pre-Depends"
	FieldDepends    = "Depends"
	FieldRecommends = "Recommends"
	FieldProvides   = "Provides"
)

// Relations parses the relation field (FieldDepends, ...) of p. An absent
// field gives an empty Dependency.
func (p *Package) Relations(field string) (dependency.Dependency, error) {
	val := strings.TrimSpace(strings.ReplaceAll(p.raw[field], "\n", " "))
	if val == "" {
		return dependency.Dependency{}, nil
	}
	d, err := dependency.Parse(val)
	if err != nil {
		return dependency.Dependency{}, fmt.Errorf("%s (%s): bad %s %q: %v", p.where, p.Name, field, truncate(val, 80), err)
	}
	return *d, nil
}

// String is "name version".
func (p *Package) String() string { return p.Name + " " + p.Version.String() }

// indexFields are the fields of Packages and status entries that are kept.
var indexFields = map[string]bool{
	"Package": true, "Version": true, "Architecture": true, "Multi-Arch": true,
	"Essential": true, "Priority": true, "Source": true, "Filename": true,
	"Size": true, "SHA256": true, "Status": true,
	FieldPreDepends: true, FieldDepends: true, FieldRecommends: true, FieldProvides: true,
}

// ParsePackages reads a Packages index. name is used in error messages.
func ParsePackages(r io.Reader, name string) ([]*Package, error) {
	var out []*Package
	err := eachStanza(r, name, indexFields, func(s Stanza) error {
		p, err := packageFromStanza(s, name, true)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// ParseStatus reads a dpkg status file and returns the packages whose
// Status says they are installed (or half-installed but unpacked and
// configured: "install ok installed", "hold ok installed").
func ParseStatus(r io.Reader, name string) ([]*Package, error) {
	var out []*Package
	err := eachStanza(r, name, indexFields, func(s Stanza) error {
		st := strings.Fields(s.Get("Status"))
		if len(st) != 3 || st[2] != "installed" {
			return nil
		}
		p, err := packageFromStanza(s, name, false)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

func packageFromStanza(s Stanza, file string, archive bool) (*Package, error) {
	p := &Package{
		Name:         s.Get("Package"),
		Architecture: s.Get("Architecture"),
		MultiArch:    s.Get("Multi-Arch"),
		Essential:    s.Get("Essential") == "yes",
		Priority:     s.Get("Priority"),
		Filename:     s.Get("Filename"),
		SHA256:       strings.ToLower(s.Get("SHA256")),
	}
	where := fmt.Sprintf("%s:%d", file, s.Line)
	if p.Name == "" {
		return nil, fmt.Errorf("%s: paragraph has no Package field", where)
	}
	where += " (" + p.Name + ")"
	v, err := version.Parse(s.Get("Version"))
	if err != nil || s.Get("Version") == "" {
		return nil, fmt.Errorf("%s: bad Version %q: %v", where, s.Get("Version"), err)
	}
	p.Version = v
	if src := s.Get("Source"); src != "" {
		name, _, _ := strings.Cut(src, " ")
		if name != p.Name {
			p.Source = name
		}
	}
	if archive {
		if p.Filename == "" {
			return nil, fmt.Errorf("%s: no Filename", where)
		}
		if len(p.SHA256) != 64 {
			return nil, fmt.Errorf("%s: no SHA256 (or not 64 hex digits)", where)
		}
		if sz := s.Get("Size"); sz != "" {
			n, err := strconv.ParseInt(sz, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s: bad Size %q", where, sz)
			}
			p.Size = n
		}
	}
	p.where = fmt.Sprintf("%s:%d", file, s.Line)
	for _, k := range []string{FieldPreDepends, FieldDepends, FieldRecommends, FieldProvides} {
		if v := s.Get(k); v != "" {
			if p.raw == nil {
				p.raw = map[string]string{}
			}
			p.raw[k] = strings.ReplaceAll(v, "\n", " ")
		}
	}
	return p, nil
}
