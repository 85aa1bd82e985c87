package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// Intent is the record of a step in progress. It is written into
// state.json (State.Pending) before the store changes, and cleared in the
// same atomic write that records the step's outcome, so that state.json and
// the intent can never disagree. A Pending intent found at start means the
// process died mid-step: Recover undoes it.
type Intent struct {
	Op      string        `json:"op"` // install, update or remove
	Name    string        `json:"name"`
	Started time.Time     `json:"started"`
	Images  []ImageIntent `json:"images"`
	// NewUnits are units the new image ships that were not running before
	// the step: an undo stops them and takes their runtime enablement back.
	NewUnits []string `json:"new_units,omitempty"`
	// RestoreUnits are units of the previous images that the step stopped
	// or restarted: an undo starts them again on the previous version.
	RestoreUnits []string `json:"restore_units,omitempty"`
	// KeepPrevious keeps the replaced image in previous/ when the step
	// commits (updates and rollbacks), for `sysextctl rollback`.
	KeepPrevious bool `json:"keep_previous,omitempty"`
}

// ImageIntent is what a step does to one image.
type ImageIntent struct {
	Image string `json:"image"`
	// Place is true when a new image is put in place (install, update), false
	// when the image is taken out (remove, conflict).
	Place bool `json:"place"`
	// Previous is true when an image of this name was in the store before the
	// step; it is kept as backup/IMAGE.raw (a hard link) until the step ends.
	Previous bool `json:"previous"`
}

// Txn is one step's change to the store, crash-safe by construction:
//
//  1. Begin records the intent in state.json (fsynced) before anything moves;
//  2. Keep hard-links each previous image to backup/IMAGE.raw, so that the
//     store never has fewer copies of it than before;
//  3. Place renames the new image over the old name (one atomic rename: the
//     name always points at a whole image, old or new); Take unlinks it;
//  4. Commit writes the outcome into state.json and clears the intent in
//     one atomic write, then drops the backups;
//  5. Undo (or Recover, after a crash) renames the backups back and
//     removes images that had no predecessor, then clears the intent.
//
// At every instant each image of the step is either in place, or in
// backup/ with the intent saying so.
type Txn struct {
	s      Store
	intent Intent
	done   bool
}

// Begin records in as the pending step. It fails when a step is pending
// already (Recover first). The caller holds the lock.
func (s Store) Begin(in Intent) (*Txn, error) {
	state, err := s.LoadState()
	if err != nil {
		return nil, err
	}
	if state.Pending != nil {
		return nil, fmt.Errorf("an interrupted %s of %s is pending: recover first", state.Pending.Op, state.Pending.Name)
	}
	for i := range in.Images {
		_, err := os.Lstat(s.ImagePath(in.Images[i].Image))
		in.Images[i].Previous = err == nil
	}
	state.Pending = &in
	if err := s.SaveState(state); err != nil {
		return nil, fmt.Errorf("recording the step: %w", err)
	}
	return &Txn{s: s, intent: in}, nil
}

// Intent is the recorded intent.
func (t *Txn) Intent() Intent { return t.intent }

// SetUnits records the units an undo must stop and restore. Call it before
// starting or stopping them.
func (t *Txn) SetUnits(newUnits, restore []string) error {
	t.intent.NewUnits, t.intent.RestoreUnits = newUnits, restore
	return t.s.updateState(func(st *State) error {
		if st.Pending == nil {
			return errors.New("no step is pending")
		}
		st.Pending.NewUnits, st.Pending.RestoreUnits = newUnits, restore
		return nil
	})
}

// Keep hard-links every previous image of the step to its backup.
func (t *Txn) Keep() error {
	if err := t.s.mkdir(backupDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", backupDir, err)
	}
	r, err := t.s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	for _, im := range t.intent.Images {
		if !im.Previous {
			continue
		}
		bak := rootfs.InRoot(backupRel(im.Image))
		// Recover ran before this step: a backup here is a leftover of a
		// committed step, never the only copy of anything.
		if err := r.Remove(bak); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clearing old backup of %s: %w", im.Image, err)
		}
		if err := r.Link(rootfs.InRoot(imageRel(im.Image)), bak); err != nil {
			return fmt.Errorf("keeping %s: %w", im.Image, err)
		}
	}
	return syncDir(t.s.Root.Path(backupDir))
}

// Place renames the verified staged file (a host path under the root) over
// image. Keep must have run.
func (t *Txn) Place(staged, image string) error {
	r, err := t.s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.MkdirAll(rootfs.InRoot(rootfs.ExtensionsDir), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", rootfs.ExtensionsDir, err)
	}
	src := rootfs.InRoot(t.s.Root.Rel(staged))
	if err := r.Chmod(src, 0o644); err != nil {
		return fmt.Errorf("placing %s: %w", image, err)
	}
	if err := r.Rename(src, rootfs.InRoot(imageRel(image))); err != nil {
		return fmt.Errorf("placing %s: %w", image, err)
	}
	return syncDir(t.s.Root.Path(rootfs.ExtensionsDir))
}

// Take unlinks image from the store; its backup keeps it. Keep must have run.
func (t *Txn) Take(image string) error {
	r, err := t.s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Remove(rootfs.InRoot(imageRel(image))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("taking %s out: %w", image, err)
	}
	return syncDir(t.s.Root.Path(rootfs.ExtensionsDir))
}

// Commit applies outcome to the state and clears the intent in one atomic
// write; only then are the backups dropped. After an error, Committed tells
// whether the step stands (only dropping a backup failed: Clean drops it
// later) or the state write failed (the step is still pending: Undo it).
func (t *Txn) Commit(outcome func(*State)) error {
	if t.intent.KeepPrevious {
		if err := t.s.keepPrevious(t.intent); err != nil {
			return err
		}
	}
	if err := t.s.updateState(func(st *State) error {
		if outcome != nil {
			outcome(st)
		}
		st.Pending = nil
		return nil
	}); err != nil {
		return fmt.Errorf("recording the step: %w", err)
	}
	t.done = true
	return t.s.dropBackups(t.intent)
}

// Committed reports whether Commit recorded the step.
func (t *Txn) Committed() bool { return t.done }

// Undo puts every image of the step back as it was. The intent stays
// recorded until Finish, so that a crash during the refresh and unit
// restarts that follow an undo is undone again by Recover.
func (t *Txn) Undo() error {
	if t.done {
		return nil
	}
	return t.s.UndoFiles(t.intent)
}

// Finish clears the intent of an undone step.
func (t *Txn) Finish() error {
	if t.done {
		return nil
	}
	t.done = true
	return t.s.ClearPending()
}

// UndoFiles restores what intent changed in the store. It is idempotent:
// after a crash at any point of a step (or of a previous undo) it leaves
// every image as it was before the step.
func (s Store) UndoFiles(in Intent) error {
	r, err := s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	for _, im := range in.Images {
		img, bak := rootfs.InRoot(imageRel(im.Image)), rootfs.InRoot(backupRel(im.Image))
		if !im.Previous {
			// Nothing was there before: whatever is there now is ours.
			if err := r.Remove(img); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("removing new %s: %w", im.Image, err))
			}
			continue
		}
		bfi, err := r.Lstat(bak)
		if errors.Is(err, fs.ErrNotExist) {
			// Never backed up (the step died before Keep), or restored by an
			// earlier undo: the image in place is the previous one.
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ifi, err := r.Lstat(img); err == nil && os.SameFile(ifi, bfi) {
			// Not replaced yet; rename(2) between two links of one file does
			// nothing, so drop the spare link instead.
			if err := r.Remove(bak); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := r.Rename(bak, img); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", im.Image, err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, syncDir(s.Root.Path(rootfs.ExtensionsDir)))
	}
	return errors.Join(errs...)
}

// PreviousPath is where the image replaced by the last update is kept.
func (s Store) PreviousPath(image string) string { return s.Root.Path(previousRel(image)) }

func previousRel(image string) string { return previousDir + "/" + image + ".raw" }

// keepPrevious links the backups of replaced images into previous/, each
// replacing the older one with one rename. A crash after this but before
// the commit leaves previous/ holding the image that is back in place;
// the record's digest tells (rollback checks it).
func (s Store) keepPrevious(in Intent) error {
	if err := s.mkdir(previousDir, 0o700); err != nil {
		return err
	}
	r, err := s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	for _, im := range in.Images {
		if !im.Place || !im.Previous {
			continue
		}
		tmp := rootfs.InRoot(previousDir + "/." + im.Image + ".raw.new")
		r.Remove(tmp)
		if err := r.Link(rootfs.InRoot(backupRel(im.Image)), tmp); err != nil {
			return fmt.Errorf("keeping the previous %s: %w", im.Image, err)
		}
		if err := r.Rename(tmp, rootfs.InRoot(previousRel(im.Image))); err != nil {
			return fmt.Errorf("keeping the previous %s: %w", im.Image, err)
		}
	}
	return syncDir(s.Root.Path(previousDir))
}

// DropPrevious removes the kept previous image of image (on remove).
func (s Store) DropPrevious(image string) error {
	err := os.Remove(s.PreviousPath(image))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s Store) dropBackups(in Intent) error {
	r, err := s.Root.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	for _, im := range in.Images {
		if err := r.Remove(rootfs.InRoot(backupRel(im.Image))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("dropping backup of %s: %w", im.Image, err))
		}
	}
	return errors.Join(errs...)
}

// Pending returns the intent of an interrupted step, or nil.
func (s Store) Pending() (*Intent, error) {
	st, err := s.LoadState()
	if err != nil {
		return nil, err
	}
	return st.Pending, nil
}

// ClearPending forgets the pending intent (after it was undone).
func (s Store) ClearPending() error {
	return s.updateState(func(st *State) error {
		st.Pending = nil
		return nil
	})
}

// Clean removes leftovers: partial downloads in staging and the backups of
// committed steps. It refuses while a step is pending, whose backups may
// be the only copy of an image. It returns the in-root paths it removed.
func (s Store) Clean() ([]string, error) {
	if p, err := s.Pending(); err != nil || p != nil {
		if err == nil {
			err = fmt.Errorf("an interrupted %s of %s is pending", p.Op, p.Name)
		}
		return nil, fmt.Errorf("not cleaning the store: %w", err)
	}
	var removed []string
	var errs []error
	for _, dir := range []string{stagingDir, backupDir} {
		r, err := s.cleanDir(dir)
		removed = append(removed, r...)
		errs = append(errs, err)
	}
	r, err := s.cleanStaleImageLocks()
	removed = append(removed, r...)
	errs = append(errs, err)
	return removed, errors.Join(errs...)
}

// cleanStaleImageLocks removes the ".#IMAGE.raw.lck" files systemd-sysext
// leaves beside images when it is killed mid-refresh. systemd ignores them,
// but they are litter in a directory that should hold images only. A lock
// file someone still holds (flock) is left alone.
func (s Store) cleanStaleImageLocks() ([]string, error) {
	entries, err := os.ReadDir(s.Root.Path(rootfs.ExtensionsDir))
	if err != nil {
		return nil, nil
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, ".#") || !strings.HasSuffix(n, ".lck") || !e.Type().IsRegular() {
			continue
		}
		p := s.Root.Path(rootfs.ExtensionsDir + "/" + n)
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
			} else {
				removed = append(removed, rootfs.ExtensionsDir+"/"+n)
			}
		}
		f.Close()
	}
	return removed, errors.Join(errs...)
}

// updateState loads the state, applies fn and saves it.
func (s Store) updateState(fn func(*State) error) error {
	st, err := s.LoadState()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return s.SaveState(st)
}
