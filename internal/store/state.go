// Package store owns what sysextd keeps on disk: the images in
// /var/lib/extensions, their backups and download staging area under
// /var/lib/sysextd, the state file that records who installed what, and
// the lock that serializes every mutation.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// Who asked for an extension.
const (
	ByManual = "manual"
	ByAuto   = "auto"
)

// Record is what is known about one installed extension.
type Record struct {
	Name        string    `json:"name"`  // manifest key
	Image       string    `json:"image"` // extension-release name and file stem
	Tag         string    `json:"tag,omitempty"`
	Version     string    `json:"version"` // PACKAGE_VERSION
	BuildTime   string    `json:"build_time,omitempty"`
	Digest      string    `json:"digest,omitempty"` // sha256:<hex> of the image
	InstalledBy string    `json:"installed_by"`
	InstalledAt time.Time `json:"installed_at"`
	Adopted     bool      `json:"adopted,omitempty"` // taken over from sysext.pl
	// Units are the unit files the image ships with an [Install] section,
	// started after merge and stopped before removal.
	Units []string `json:"units,omitempty"`
	// RebootRequired is set when an update with the reboot action was
	// applied and the host has not rebooted since.
	RebootRequired bool `json:"reboot_required,omitempty"`
}

// State is the content of state.json.
type State struct {
	Extensions map[string]*Record `json:"extensions"`
}

// Names returns the recorded names, sorted.
func (s *State) Names() []string {
	out := make([]string, 0, len(s.Extensions))
	for n := range s.Extensions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ByImage finds the record for an image name.
func (s *State) ByImage(image string) *Record {
	for _, r := range s.Extensions {
		if r.Image == image {
			return r
		}
	}
	return nil
}

// Store resolves and changes the on-disk layout under one root.
type Store struct {
	Root rootfs.Root
}

// StatePath is the host path of state.json.
func (s Store) StatePath() string { return s.Root.Path(rootfs.StateDir + "/state.json") }

// LoadState reads state.json; a missing file is an empty state.
func (s Store) LoadState() (*State, error) {
	st := &State{Extensions: map[string]*Record{}}
	data, err := os.ReadFile(s.StatePath())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("parsing state %s: %w", s.StatePath(), err)
	}
	if st.Extensions == nil {
		st.Extensions = map[string]*Record{}
	}
	return st, nil
}

// SaveState writes state.json atomically and world-readable.
func (s Store) SaveState(st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	return WriteFileAtomic(s.StatePath(), append(data, '\n'), 0o644)
}

// WriteFileAtomic writes data to a temporary file beside path, fsyncs it,
// renames it over path and fsyncs the directory.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
