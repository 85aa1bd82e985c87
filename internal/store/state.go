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
	"sort"
	"time"

	"github.com/spamtagger/sysextd/internal/payload"
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
	// Hold keeps update, auto and the daemon away from the extension;
	// HoldReason says why (an operator's hold, a rollback).
	Hold       bool   `json:"hold,omitempty"`
	HoldReason string `json:"hold_reason,omitempty"`
	// Pin is the version the extension is to stay on.
	Pin string `json:"pin,omitempty"`
	// SignedBy is the key that verified the release ("NAME (ID)"), or
	// "unsigned" (internal/trust).
	SignedBy string `json:"signed_by,omitempty"`
	// SignedAt is the verifying signature's own signed time: a release
	// signed earlier is never an update over this one.
	SignedAt time.Time `json:"signed_at,omitzero"`
	// Source is where the release came from (its URL, a mirror, "local");
	// Unverified is true when it published no digest for the image.
	Source     string `json:"source,omitempty"`
	Unverified bool   `json:"unverified,omitempty"`
	// Payload lists the etc/ and var/ files the image carries, installed
	// onto the host like dpkg conffiles (internal/payload).
	Payload []payload.File `json:"payload,omitempty"`
	// Previous is the image the last successful update replaced, kept at
	// /var/lib/sysextd/previous/IMAGE.raw for an offline rollback.
	Previous *Previous `json:"previous,omitempty"`
}

// Previous describes a kept previous image.
type Previous struct {
	Tag       string    `json:"tag,omitempty"`
	Version   string    `json:"version"`
	BuildTime string    `json:"build_time,omitempty"`
	Digest    string    `json:"digest,omitempty"`
	Units     []string  `json:"units,omitempty"`
	SignedBy  string    `json:"signed_by,omitempty"`
	SignedAt  time.Time `json:"signed_at,omitzero"`
	Source    string    `json:"source,omitempty"`
}

// State is the content of state.json.
type State struct {
	Extensions map[string]*Record `json:"extensions"`
	// Pending is the step in progress; set only while a step runs, or after
	// a crash until Recover undoes it.
	Pending *Intent `json:"pending,omitempty"`
	// Probation lists the changes whose units are being watched, by
	// extension name (probation.go).
	Probation map[string]*Probation `json:"probation,omitempty"`
	// Withheld holds extensions that are not installed, by name.
	Withheld map[string]*Withheld `json:"withheld,omitempty"`
	// CountedBoot is the boot ID sysextd-boot-check.service counted
	// against the changes on probation, before the merge: the daemon's
	// first start in that boot clears it instead of counting the boot
	// again, and any later start in it (a crash loop) counts
	// (engine/boot.go).
	CountedBoot string `json:"counted_boot,omitempty"`
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

// SaveState writes state.json atomically and world-readable (list runs
// unprivileged). The write goes through the root: a symlink planted in the
// state directory cannot redirect it out of the tree.
//
// It keeps rootfs.UnconfirmedMarker in step: the marker is written (and
// fsynced) before a state that lists a change on probation, and removed
// after a state that lists none. So at any crash, a state with something
// unconfirmed has its marker; a marker without one costs a boot check
// that finds nothing and removes it.
func (s Store) SaveState(st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	unconfirmed := len(st.Probation) > 0
	if unconfirmed {
		if err := s.markUnconfirmed(); err != nil {
			return err
		}
	}
	if err := s.WriteFile(rootfs.StateDir+"/state.json", append(data, '\n'), 0o644); err != nil {
		return err
	}
	if !unconfirmed {
		// The state stands either way: a marker that could not go costs
		// one boot check, which removes it.
		_ = s.unmarkUnconfirmed()
	}
	return nil
}

// UnconfirmedMarked reports whether rootfs.UnconfirmedMarker exists.
func (s Store) UnconfirmedMarked() bool {
	_, err := os.Lstat(s.Root.Path(rootfs.UnconfirmedMarker))
	return err == nil
}

// markUnconfirmed writes the marker, fsynced with its directory, unless it
// is there.
func (s Store) markUnconfirmed() error {
	if s.UnconfirmedMarked() {
		return nil
	}
	return s.WriteFile(rootfs.UnconfirmedMarker, []byte("A change is on probation (state.json): sysextd-boot-check.service counts each boot before the merge.\n"), 0o644)
}

// unmarkUnconfirmed removes the marker, if any, through the root, and
// fsyncs its directory.
func (s Store) unmarkUnconfirmed() error {
	if !s.UnconfirmedMarked() {
		return nil
	}
	r, err := s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Remove(rootfs.InRoot(rootfs.UnconfirmedMarker)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", rootfs.UnconfirmedMarker, err)
	}
	return syncDir(s.Root.Path(rootfs.StateDir))
}

// WriteFile writes data to the in-root path p atomically: a temporary file
// beside it, fsynced, renamed over p, and the directory fsynced. Every step
// resolves inside the root.
func (s Store) WriteFile(p string, data []byte, mode fs.FileMode) error {
	return s.Root.WriteFile(p, data, mode)
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
