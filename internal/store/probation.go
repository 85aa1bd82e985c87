package store

import "time"

// Probation is a change whose units are being watched (engine/probation.go).
// It is written in the same atomic write as the change's commit, and
// cleared in the same write as its rollback, so whoever holds the lock
// next (the daemon, after sysextctl exited or after a crash) carries on
// from exactly where the last owner was.
type Probation struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	// From is the version the change replaced, "" for a fresh install
	// (removed instead of rolled back); To is the version on probation.
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	// Units are watched until Until; a unit that fails or restarts more
	// than MaxRestarts times past Restarts (its NRestarts when the
	// probation began, or when this boot began it again) fails it.
	Units       []string          `json:"units"`
	Since       time.Time         `json:"since"`
	Until       time.Time         `json:"until"`
	MaxRestarts int               `json:"max_restarts"`
	Restarts    map[string]uint32 `json:"restarts,omitempty"`
	// BootID is the boot the window was opened in: a reboot resets the
	// units' counters, so a later boot opens a new window.
	BootID string `json:"boot_id,omitempty"`
	// AwaitBoot is set for a change whose effect waits for a reboot (a
	// reboot action): its window opens in the next boot.
	AwaitBoot bool `json:"await_boot,omitempty"`
	// Tries counts the sysextd starts, each boot's first among them, that
	// found this change still unconfirmed (engine/boot.go); written and
	// fsynced before anything is merged.
	Tries int `json:"tries,omitempty"`
}

// Withheld is the hold of an extension that is not installed: a fresh
// install removed after its probation failed (engine/probation.go). auto
// and the daemon do not install it again; an operator's install or unhold
// clears it.
type Withheld struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}
