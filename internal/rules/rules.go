// Package rules is the registry of recommendation rule kinds (pci_id, dmi,
// ...). Each kind lives in one file that holds everything about it: its
// manifest key and value, the check of a value, the fact it looks at and
// how that fact is gathered under a root, the comparison, and its lines in
// `sysextctl facts` and sysext.toml(5). Manifest decoding, fact gathering,
// matching, explain and the man page all iterate Kinds.
//
// Adding a kind: one new file holding the kind and its registration
// line (//sysextd:rulekind ORDER RULETYPE FACTSTYPE, above its Kind
// variable), then `go generate ./internal/rules`, which writes Kinds,
// Rules and Facts into kinds_gen.go (internal/tools/rulesgen).
//
// The package imports only the standard library and rootfs, so that the
// configuration layer (internal/manifest) can use it without linking a
// transport.
package rules

//go:generate go run ../tools/rulesgen

import (
	"context"
	"log/slog"
	"sort"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// Kind is one kind of rule.
type Kind struct {
	// Key is the manifest key, and Check.Rule of its checks.
	Key string
	// FromHost is true when the fact comes from the running host even
	// for a --root tree (what systemd detects).
	FromHost bool
	// Man is the kind's entry in sysext.toml(5)'s KEYS, in troff.
	Man string

	values   func(r *Rules) []string
	validate func(value string) (msg string, warning bool)
	gather   func(ctx context.Context, root rootfs.Root, o Options, f *Facts) error
	loaded   func(f *Facts)
	match    func(value string, f *Facts) Check
	show     func(f *Facts, hostNote string) []string
	showRank int
}

// Lookup returns the kind with key, or nil.
func Lookup(key string) *Kind {
	for _, k := range Kinds {
		if k.Key == key {
			return k
		}
	}
	return nil
}

// Values returns r's values of this kind, as written.
func (k *Kind) Values(r *Rules) []string { return k.values(r) }

// Validate checks one value: msg is empty when it is fine; a warning does
// not make the entry unusable.
func (k *Kind) Validate(value string) (msg string, warning bool) { return k.validate(value) }

// Match compares one value with the facts.
func (k *Kind) Match(value string, f *Facts) Check { return k.match(value, f) }

// Empty reports whether r has no rule of any kind.
func (r *Rules) Empty() bool {
	for _, k := range Kinds {
		if len(k.values(r)) > 0 {
			return false
		}
	}
	return true
}

// Check is one rule compared with the facts.
type Check struct {
	Rule    string `json:"rule"`    // the kind's key
	Pattern string `json:"pattern"` // the rule's value as written
	Matched bool   `json:"matched"`
	// Fact is what matched, or what was compared when nothing did.
	Fact string `json:"fact"`
}

// Reason is the short form shown to people: "pci_id 15ad:0405".
func (c Check) Reason() string { return c.Rule + " " + c.Pattern }

// VirtDetector asks systemd which virtualization it runs under. It returns
// systemd's name ("vmware", "kvm", "none", ...).
type VirtDetector func(ctx context.Context) (string, error)

// Options tune Gather.
type Options struct {
	// Files are the in-root flag-file paths to check (the manifests' if_file).
	Files []string
	// Virt detectors are tried in order; the first answer wins. With none
	// given, `systemd-detect-virt` is used. None answering means "none".
	Virt []VirtDetector
	// DMI reads the system vendor and product name; nil reads sysfs
	// directly. facts.Gather passes ghw's reader: this package stays
	// free of ghw (and with it of net/http) because manifest imports it.
	DMI    func(root rootfs.Root) (DMI, error)
	Logger *slog.Logger
}

// Gather reads every kind's fact under root, in the order of Kinds; the
// first error stops it.
func Gather(ctx context.Context, root rootfs.Root, o Options) (Facts, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var f Facts
	for _, k := range Kinds {
		if err := k.gather(ctx, root, o, &f); err != nil {
			return Facts{}, err
		}
	}
	return f, nil
}

// Normalize completes facts read from a file the way Gather would have
// written them (lower-case PCI IDs, "none" for no virtualization).
func Normalize(f *Facts) {
	for _, k := range Kinds {
		if k.loaded != nil {
			k.loaded(f)
		}
	}
}

// FactLines are the lines `sysextctl facts` prints for the kinds' facts,
// columns separated by tabs, in the order people read them. hostNote, when
// set, is said of the facts that come from the running host.
func FactLines(f *Facts, hostNote string) []string {
	kinds := append([]*Kind(nil), Kinds...)
	sort.SliceStable(kinds, func(i, j int) bool { return kinds[i].showRank < kinds[j].showRank })
	var out []string
	for _, k := range kinds {
		out = append(out, k.show(f, hostNote)...)
	}
	return out
}

// ManKeys is the KEYS entries of every kind for sysext.toml(5).
func ManKeys() string {
	var b strings.Builder
	for _, k := range Kinds {
		b.WriteString(".TP\n" + k.Man)
	}
	return b.String()
}

// ManList names every kind in troff bold, comma-separated, for the
// sentence of sysext.toml(5) that says any one rule recommends.
func ManList() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = `\fB` + k.Key + `\fP`
	}
	return strings.Join(names, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
