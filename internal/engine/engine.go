// Package engine orchestrates the other packages into the operator's verbs:
// it lists extensions, computes a plan (plain data, printable for
// --dry-run) from manifests, facts, state and available releases, and
// applies it with a rollback for every step that fails.
package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/merge"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/trust"
	"github.com/spamtagger/sysextd/internal/units"
)

// Merger activates what is in the store (internal/merge.Sysext).
type Merger interface {
	Refresh(ctx context.Context) error
	Merged(ctx context.Context) ([]string, error)
}

// Units talks to the service manager (internal/units.Manager). Every call
// waits for its job to finish.
type Units interface {
	Reload(ctx context.Context) error
	Start(ctx context.Context, unit string) error
	// StartAll enqueues a start job for each unit, in order, then waits
	// for all of them; the error names every unit that failed.
	StartAll(ctx context.Context, units []string) error
	Stop(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	EnableRuntime(ctx context.Context, units []string) error
	DisableRuntime(ctx context.Context, units []string) error
	// Health reads what a probation watches of a unit (probation.go).
	Health(ctx context.Context, unit string) (units.Health, error)
}

// Engine holds what one run needs. Units is nil when there is no service
// manager to talk to (a --root other than /, or no D-Bus): unit handling and
// service update actions are then skipped with a warning.
type Engine struct {
	Root      rootfs.Root
	Manifests *manifest.Set
	Facts     *facts.Facts
	Source    source.Source // internal/source.Router: GitHub, mirrors, OCI, local files
	Sysext    Merger
	Units     Units
	Log       *slog.Logger
	Now       func() time.Time
	// FreeSpace reports the bytes available to root under a directory;
	// nil means statfs(2).
	FreeSpace func(dir string) (uint64, error)
	// Keyring holds the signing keys (nil: loaded from the root when first
	// needed); SignatureDefault is sysextd.toml's signature policy.
	Keyring          *trust.Keyring
	SignatureDefault string
	// IgnorePhasing takes releases phased away from this appliance
	// (update --ignore-phasing); auto and the daemon never set it.
	IgnorePhasing bool
	// sumsMemo is the SHA256SUMS verified by this engine's lookups.
	sumsMemo *lookupSumsMemo
	// SystemdVersion is the root's systemd major version (0: unknown,
	// read from the root when first needed).
	SystemdVersion int
	// Observer, when set, hears each step's phases (events.go).
	Observer Observer
	// Probation is how changes that start units are watched (probation.go).
	Probation ProbationConfig
	// BeforeMerge is the boot check's mode (boot.go): the boot has merged
	// nothing yet and systemd-sysext.service merges right after, so a step
	// places its files and commits, and leaves the merge, its units and its
	// update action to the boot. Sysext and Units are nil then.
	BeforeMerge bool
}

// systemdVersion is the root's systemd major version, read once; 0 when
// it cannot be told.
func (e *Engine) systemdVersion(ctx context.Context) int {
	if e.SystemdVersion == 0 {
		v, err := merge.SystemdVersion(ctx, e.Root)
		if err != nil {
			e.log().Debug("telling the systemd version: " + err.Error())
			v = -1
		}
		e.SystemdVersion = v
	}
	return max(e.SystemdVersion, 0)
}

// keyring returns the run's keyring, loading it from the root once.
func (e *Engine) keyring() *trust.Keyring {
	if e.Keyring == nil {
		kr, errs := trust.LoadKeyring(e.Root)
		for _, err := range errs {
			e.log().Warn("ignoring a signing key: " + err.Error())
		}
		e.Keyring = kr
	}
	return e.Keyring
}

// policy resolves what the local configuration allows extension name:
// its signature policy (from the keyring loaded once), allow_etc and
// allow_shadow.
func (e *Engine) policy(name string) StepPolicy {
	var mode string
	var keys []string
	vendor := false
	var p StepPolicy
	if en := e.Manifests.Get(name); en != nil {
		mode, keys, vendor = en.Signature, en.Keys, en.Source == rootfs.VendorManifest
		p.AllowEtc, p.AllowShadow = en.AllowEtc, en.AllowShadow
	}
	p.Signature = trust.PolicyFor(e.keyring(), mode, keys, vendor, e.SignatureDefault, name)
	return p
}

func (e *Engine) store() store.Store { return store.Store{Root: e.Root} }

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

func (e *Engine) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// Target is the codename and architecture releases are chosen for.
func (e *Engine) Target() source.Target { return e.target() }

func (e *Engine) target() source.Target {
	return source.Target{Codename: e.Facts.OS.VersionCodename, Arch: e.Facts.Arch}
}

func (e *Engine) host() image.Host {
	return image.HostOf(e.Facts.OS, e.Facts.Arch)
}

func request(en *manifest.Entry) source.Request {
	return source.Request{Name: en.Name, URL: en.URL, Image: en.Image(), Prerelease: en.Prerelease, Mirrors: en.Mirrors}
}

// pinnedRequest is request, asking for the pinned version of an
// extension pinned with `sysextctl pin` (a source that lists every
// release, an OCI registry, finds it; others offer their newest).
func (e *Engine) pinnedRequest(en *manifest.Entry, pins map[string]string) source.Request {
	r := request(en)
	r.Version = pins[en.Name]
	return r
}

// pins are the installed extensions' pinned versions, by name.
func (e *Engine) pins() map[string]string {
	out := map[string]string{}
	if state, err := e.store().LoadState(); err == nil {
		for n, r := range state.Extensions {
			if r != nil && r.Pin != "" {
				out[n] = r.Pin
			}
		}
	}
	return out
}
