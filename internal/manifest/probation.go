package manifest

import (
	"fmt"
	"time"
)

// MaxProbation bounds an entry's probation: a window longer than this
// would hold a rollback back for longer than anyone watches.
const MaxProbation = 24 * time.Hour

// Duration is a TOML string in Go duration syntax ("90s", "5m").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration between 0 (no probation) and
// MaxProbation; a bare number is refused by the TOML type check.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("probation: %w", err)
	}
	if v < 0 || v > MaxProbation {
		return fmt.Errorf("probation %q: want between 0s and %s", b, MaxProbation)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in the same syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }
