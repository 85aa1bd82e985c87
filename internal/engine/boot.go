package engine

import (
	"context"
	"fmt"

	"github.com/spamtagger/sysextd/internal/store"
)

// Boot assessment, after systemd-boot's "Automatic Boot Assessment", per
// extension: a change is unconfirmed while it is on probation (state.json's
// Probation, probation.go), and a change whose effect waits for a reboot
// stays there until a boot has run its units healthy for the window.
//
// Each boot that starts with a change unconfirmed counts one try for it,
// written and fsynced before anything is merged: sysextd-boot-check.service
// (sysextd -boot-check, ordered before systemd-sysext.service and run only
// while rootfs.UnconfirmedMarker exists) calls CountBootBeforeMerge, and
// past BootTries tries puts the previous image back offline, before the
// merge, and holds the extension. The daemon's first start in that boot
// counts nothing more (state.json's counted_boot); each later start of the
// daemon in the same boot counts one try (a crash loop). Where the boot
// check did not run (no marker yet: a state written by an older sysextd),
// the daemon's first start counts the boot itself, as before.

// countTries adds one try to every unconfirmed change of state that was
// opened in another boot or counted before, and returns the tries by
// extension (nil when none counts).
func countTries(state *store.State, boot string) map[string]int {
	tries := map[string]int{}
	for name, p := range state.Probation {
		if p.BootID == boot && p.Tries == 0 {
			continue // made in this boot, sysextd not restarted since
		}
		p.Tries++
		tries[name] = p.Tries
	}
	if len(tries) == 0 {
		return nil
	}
	return tries
}

// CountBoot counts this start of the daemon against every unconfirmed
// change: one that was opened in another boot, or counted before. The
// first start in a boot the boot check counted (counted_boot) counts
// nothing and clears the mark, so that the next start counts. It needs
// neither the network nor the service manager, and runs first, before
// Recover and any merge, so that a start that dies later still counts.
// The caller holds the lock. It returns the tries by extension.
func (e *Engine) CountBoot() (map[string]int, error) {
	st := e.store()
	state, err := st.LoadState()
	if err != nil || len(state.Probation) == 0 {
		return nil, err
	}
	boot := e.bootID()
	var tries map[string]int
	switch {
	case state.CountedBoot != "" && state.CountedBoot == boot:
		e.log().Info("this boot was counted before the merge by sysextd-boot-check.service")
	default:
		tries = countTries(state, boot)
		if tries == nil && state.CountedBoot == "" {
			return nil, nil
		}
	}
	state.CountedBoot = ""
	e.hit("boot:count:before")
	if err := st.SaveState(state); err != nil { // SaveState fsyncs the file and its directory
		return nil, fmt.Errorf("counting the boot: %w", err)
	}
	e.hit("boot:count:after")
	return tries, nil
}

// CountBootBeforeMerge is the boot check's count (sysextd -boot-check):
// once per boot, before systemd-sysext.service merges, it counts one try
// for every unconfirmed change and records the boot as counted_boot in
// the same write. A marker left without anything unconfirmed is removed.
// The caller holds the lock.
func (e *Engine) CountBootBeforeMerge() (map[string]int, error) {
	st := e.store()
	state, err := st.LoadState()
	if err != nil {
		return nil, err
	}
	if len(state.Probation) == 0 {
		if st.UnconfirmedMarked() {
			return nil, st.SaveState(state) // removes the stale marker
		}
		return nil, nil
	}
	boot := e.bootID()
	if boot != "" && state.CountedBoot == boot {
		return nil, nil // counted already: the unit ran twice in this boot
	}
	tries := countTries(state, boot)
	state.CountedBoot = boot
	e.hit("boot:check:before")
	if err := st.SaveState(state); err != nil {
		return nil, fmt.Errorf("counting the boot: %w", err)
	}
	e.hit("boot:check:after")
	return tries, nil
}

// UndoUnconfirmed undoes every change that more than BootTries starts
// found unconfirmed: the previous image goes back (a fresh install is
// removed), offline, and the extension is held with the reason, in the
// history and the journal. The caller holds the lock and has run Recover;
// the boot check runs it with BeforeMerge set (no merge, no unit, no
// update action: the boot does them), the daemon before its first merge.
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
