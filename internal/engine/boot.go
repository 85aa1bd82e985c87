package engine

import (
	"context"
	"fmt"

	"github.com/spamtagger/sysextd/internal/store"
)

// Boot assessment, after systemd-boot's "Automatic Boot Assessment", per
// extension: a change is unconfirmed while it is on probation (state.json's
// Probation, probation.go), and a change whose effect waits for a reboot
// stays there until a boot has run its units healthy for the window. Every
// sysextd start that finds a change unconfirmed from an earlier boot, or
// already counted (a crash loop in this boot), counts one try for it,
// written and fsynced before anything is merged. Past BootTries tries the
// change is undone offline from /var/lib/sysextd/previous and held.

// CountBoot counts this start against every unconfirmed change: one that
// was opened in another boot, or counted before. It needs neither the
// network nor the service manager, and runs first, before Recover and any
// merge, so that a start that dies later still counts. The caller holds
// the lock. It returns the tries by extension.
func (e *Engine) CountBoot() (map[string]int, error) {
	st := e.store()
	state, err := st.LoadState()
	if err != nil || len(state.Probation) == 0 {
		return nil, err
	}
	boot := e.bootID()
	tries := map[string]int{}
	for name, p := range state.Probation {
		if p.BootID == boot && p.Tries == 0 {
			continue // made in this boot, sysextd not restarted since
		}
		p.Tries++
		tries[name] = p.Tries
	}
	if len(tries) == 0 {
		return nil, nil
	}
	e.hit("boot:count:before")
	if err := st.SaveState(state); err != nil { // SaveState fsyncs the file and its directory
		return nil, fmt.Errorf("counting the boot: %w", err)
	}
	e.hit("boot:count:after")
	return tries, nil
}

// UndoUnconfirmed undoes every change that more than BootTries starts
// found unconfirmed: the previous image goes back (a fresh install is
// removed), offline, and the extension is held with the reason, in the
// history and the journal. The caller holds the lock and has run Recover;
// the daemon runs it before its first merge.
func (e *Engine) UndoUnconfirmed(ctx context.Context, by string) []Result {
	state, err := e.store().LoadState()
	if err != nil {
		return []Result{failed("", OpNone, err)}
	}
	max := e.Probation.bootTries()
	var results []Result
	for _, name := range probationNames(state.Probation) {
		p := state.Probation[name]
		if p.Tries <= max {
			continue
		}
		why := fmt.Sprintf("%s was not confirmed after %d starts of sysextd (boot_tries = %d): the boot never ran its units healthy for the probation", p.To, p.Tries, max)
		e.log().Error(name+": "+why, "extension", name, "version", p.To)
		results = append(results, e.undoChange(ctx, by, p, why)...)
	}
	return results
}

// Unconfirmed lists what is on probation, for status and list.
func Unconfirmed(state *store.State) []*store.Probation {
	var out []*store.Probation
	for _, n := range probationNames(state.Probation) {
		out = append(out, state.Probation[n])
	}
	return out
}
