package engine

import (
	"context"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// What callers read and take of the store under a root, without building
// an engine (no facts, manifests or network): shell completion, history,
// the mutation lock.

// HistoryRecord is the history file's record of one change
// (internal/store), as `sysextctl history --json` prints it.
type HistoryRecord = store.HistoryEntry

// HistoryByCLI marks the history records of changes sysextctl made.
const HistoryByCLI = store.HistoryByCLI

// ReadHistory reads the history under root, of extension name ("": all),
// oldest first. Warnings are about lines that could not be read.
func ReadHistory(root rootfs.Root, name string) ([]HistoryRecord, []string, error) {
	return store.Store{Root: root}.ReadHistory(name)
}

// InstalledNames are the names state.json records under root.
func InstalledNames(root rootfs.Root) ([]string, error) {
	st, err := store.Store{Root: root}.LoadState()
	if err != nil {
		return nil, err
	}
	return st.Names(), nil
}

// Lock takes the mutation lock of the engine's root, waiting for it when
// wait is set (waiting is called once when it has to); without wait, a
// lock held elsewhere is ErrLocked. Call the returned function to release
// it.
func (e *Engine) Lock(ctx context.Context, wait bool, waiting func()) (func(), error) {
	return e.store().Lock(ctx, wait, waiting)
}
