package engine

import (
	"context"
	"fmt"
)

// Activate makes sure every usable installed image is merged and its units
// run: what the daemon does at boot. It refreshes only when something is
// not merged yet.
func (e *Engine) Activate(ctx context.Context) error {
	inv, err := e.inventory(ctx)
	if err != nil {
		return err
	}
	need := false
	var units []string
	for _, n := range inv.names() {
		in := inv.get(n)
		if in.Present && in.Broken == "" {
			need = need || !inv.merged[in.Image]
			units = append(units, in.Units...)
		}
	}
	if need {
		// Refresh detaches from ctx itself: never cut short mid-merge.
		if err := e.Sysext.Refresh(ctx); err != nil {
			return fmt.Errorf("activating installed extensions: %w", err)
		}
	}
	return e.startUnits(ctx, units)
}
