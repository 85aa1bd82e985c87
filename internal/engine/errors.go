package engine

import (
	"errors"
	"time"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
)

// The classes of error the callers of the engine decide on (sysextctl's
// exit codes and hints, the API's typed errors), so that they need not
// know which package below made them.

// ErrLocked: another process holds the mutation lock (Lock without wait).
var ErrLocked = store.ErrLocked

// IsNetwork reports whether err is the network failing or a rate limit
// (exit 4).
func IsNetwork(err error) bool { return source.IsNetwork(err) }

// RateLimited reports whether err is a rate limit, and when it resets.
func RateLimited(err error) (reset time.Time, ok bool) {
	rl, ok := source.IsRateLimit(err)
	if !ok {
		return time.Time{}, false
	}
	return rl.Reset, true
}

// IsNotCached reports whether err only says that no release data is
// cached (an offline lookup of an extension never looked up).
func IsNotCached(err error) bool { return errors.Is(err, source.ErrNotCached) }

// FailedRegistry names the OCI registry err came from, if it came from
// one: its failures say what they are themselves.
func FailedRegistry(err error) (registry string, ok bool) {
	var re *source.RegistryError
	if errors.As(err, &re) {
		return re.Registry, true
	}
	return "", false
}

// LookupFailure is an item whose release lookup failed for the network or
// a rate limit, in a form that crosses the API: sysextctl exits 4 on it
// whether it asked sysextd or looked up itself.
type LookupFailure struct {
	Name  string `json:"name"`
	Error string `json:"error"`
	// RateLimitReset is when the rate limit that failed the lookup
	// resets; absent for other network failures.
	RateLimitReset *time.Time `json:"rateLimitReset,omitempty"`
}

// NetworkFailures lists, in the items' order, those whose lookup failed
// for the network or a rate limit.
func NetworkFailures(items []Item) []LookupFailure {
	var out []LookupFailure
	for _, it := range items {
		err := it.LookupError()
		if err == nil {
			continue
		}
		f := LookupFailure{Name: it.Name, Error: err.Error()}
		if reset, ok := RateLimited(err); ok {
			f.RateLimitReset = &reset
		} else if !IsNetwork(err) {
			continue
		}
		out = append(out, f)
	}
	return out
}
