package debian

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"

	"pault.ag/go/debian/version"
)

// The parsed form of a Packages index is cached beside the verified
// download, named after its SHA-256, so that a warm build skips
// decompressing and parsing tens of megabytes. The cache holds only what
// was read from a verified index; a file that does not decode is ignored
// and rewritten.
const parsedCacheFormat = "v1"

type cachedPackage struct {
	Name, Version, Architecture, MultiArch, Priority, Source string
	Essential                                                bool
	Filename, SHA256                                         string
	Size                                                     int64
	Raw                                                      map[string]string
	Where                                                    string
}

func parsedCachePath(indexPath string) string {
	return indexPath + ".parsed-" + parsedCacheFormat
}

// loadParsed returns the cached packages of the index at indexPath, or
// nil when there is no usable cache.
func loadParsed(indexPath string) []*Package {
	f, err := os.Open(parsedCachePath(indexPath))
	if err != nil {
		return nil
	}
	defer f.Close()
	var recs []cachedPackage
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&recs); err != nil {
		return nil
	}
	out := make([]*Package, 0, len(recs))
	for _, r := range recs {
		v, err := version.Parse(r.Version)
		if err != nil {
			return nil
		}
		out = append(out, &Package{Name: r.Name, Version: v, Architecture: r.Architecture, MultiArch: r.MultiArch,
			Priority: r.Priority, Source: r.Source, Essential: r.Essential, Filename: r.Filename, SHA256: r.SHA256,
			Size: r.Size, raw: r.Raw, where: r.Where})
	}
	return out
}

// storeParsed writes the cache for indexPath (best effort: a cache that
// cannot be written only costs time).
func storeParsed(indexPath string, pkgs []*Package) error {
	recs := make([]cachedPackage, len(pkgs))
	for i, p := range pkgs {
		recs[i] = cachedPackage{Name: p.Name, Version: p.Version.String(), Architecture: p.Architecture, MultiArch: p.MultiArch,
			Priority: p.Priority, Source: p.Source, Essential: p.Essential, Filename: p.Filename, SHA256: p.SHA256,
			Size: p.Size, Raw: p.raw, Where: p.where}
	}
	tmp, err := os.CreateTemp(filepath.Dir(indexPath), ".parsed-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	if err := gob.NewEncoder(w).Encode(recs); err != nil {
		tmp.Close()
		return fmt.Errorf("encoding parsed index: %w", err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), parsedCachePath(indexPath))
}
