package payload

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// An undo step, written to the journal before the change it undoes is
// made (write-ahead), so that a kill at any instant leaves a journal that
// Recover can replay. Every step is idempotent and harmless when its change
// never happened: the journal may announce a change the kill prevented.
type step struct {
	// Op is what undoes the change:
	//   rmdir:   we created directory Path; remove it if still empty;
	//   remove:  file Path was absent; remove what we wrote;
	//   restore: file Path was Data (a symlink's target when Mode has
	//            os.ModeSymlink) with Mode; write it back;
	//   mkdir:   we removed empty directory Path; create it with Mode.
	Op   string `json:"op"`
	Path string `json:"path"` // relative to the root, e.g. etc/foo/bar.conf
	Mode uint32 `json:"mode,omitempty"`
	Data []byte `json:"data,omitempty"`
}

// undoJournal is the undo log of one payload step: in memory, and, when file
// is set, in a JSON-lines file fsynced after every line.
type undoJournal struct {
	file  string
	f     *os.File
	steps []step
}

// open starts a new journal at j.file (replacing a leftover one).
func (j *undoJournal) open() error {
	if j.file == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(j.file), 0o700); err != nil {
		return fmt.Errorf("creating the payload journal: %w", err)
	}
	f, err := os.OpenFile(j.file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the payload journal: %w", err)
	}
	j.f = f
	return syncDir(filepath.Dir(j.file))
}

// killHook, set by tests only, simulates a kill: it is called with the
// index of each step before (written=false) and after (true) it reaches
// the journal, and panics to stop the payload step there.
var killHook func(n int, written bool)

// add records s durably before its change is made.
func (j *undoJournal) add(s step) error {
	if killHook != nil {
		killHook(len(j.steps), false)
	}
	j.steps = append(j.steps, s)
	if j.f == nil {
		return nil
	}
	if killHook != nil {
		defer killHook(len(j.steps)-1, true)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the payload journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("writing the payload journal: %w", err)
	}
	return nil
}

// close removes the journal file: its step is undone or committed.
func (j *undoJournal) close() error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if j.file == "" {
		return nil
	}
	if err := os.Remove(j.file); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("removing the payload journal: %w", err)
	}
	return nil
}

// undo applies every step, newest first, and reports every error.
func undo(root *os.Root, steps []step) error {
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		if err := apply(root, steps[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func apply(root *os.Root, s step) error {
	p := rel(s.Path)
	switch s.Op {
	case "rmdir":
		if err := root.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) && !isNotEmpty(err) {
			return fmt.Errorf("removing created directory /%s: %w", p, err)
		}
	case "remove":
		_ = root.Remove(tmpName(p))
		if err := root.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("removing installed /%s: %w", p, err)
		}
	case "restore":
		t := &tx{root: root}
		if err := t.restore(p, iofs.FileMode(s.Mode), s.Data); err != nil {
			return err
		}
	case "mkdir":
		if err := root.Mkdir(p, iofs.FileMode(s.Mode).Perm()); err != nil && !errors.Is(err, iofs.ErrExist) {
			return fmt.Errorf("recreating /%s: %w", p, err)
		}
	default:
		return fmt.Errorf("payload journal: unknown step %q for /%s", s.Op, p)
	}
	return nil
}

// Recover undoes the payload step whose journal is at file, if any: what a
// killed install or removal changed under root is put back, then the
// journal is removed. Call it only while the step's intent is pending (an
// interrupted step); a journal left after a committed step is dropped with
// Discard instead. A torn last line (the kill came while writing it) is
// ignored: its change was never made. It is idempotent.
func Recover(root rootfs.Root, file string) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the payload journal: %w", err)
	}
	var steps []step
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 2*maxStepLine)
	for sc.Scan() {
		var s step
		if json.Unmarshal(sc.Bytes(), &s) != nil {
			break // torn: written last, never acted on
		}
		steps = append(steps, s)
	}
	r, err := os.OpenRoot(root.Dir())
	if err != nil {
		return fmt.Errorf("opening root %s: %w", root.Dir(), err)
	}
	defer r.Close()
	if err := undo(r, steps); err != nil {
		return fmt.Errorf("undoing the interrupted etc/ changes: %w", err)
	}
	return (&undoJournal{file: file}).close()
}

// Discard removes a journal left by a step that committed.
func Discard(file string) error { return (&undoJournal{file: file}).close() }

// maxStepLine bounds a journal line: a file's old content (at most
// image.MaxReadSize) base64-encoded, plus the rest.
const maxStepLine = 96 << 20

func tmpName(p string) string { return path.Join(path.Dir(p), ".sysextd-"+path.Base(p)+".tmp") }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
