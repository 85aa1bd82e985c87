package payload

import (
	"fmt"
	iofs "io/fs"
	"path"
	"sort"
	"strings"

	"github.com/spamtagger/sysextd/internal/image"
)

// Privileged lists the payload paths whose mere presence grants a
// privilege or runs code as someone else, with the reason
// (docs/trust.md). A payload may not carry them unless the manifest entry
// names the path in allow_etc. Patterns are in-root paths; "*" matches
// within one component, a trailing "/**" matches everything below.
var Privileged = []struct{ Pattern, Why string }{
	{"/etc/sudoers", "grants root to users"},
	{"/etc/sudoers.d/**", "grants root to users"},
	{"/etc/ld.so.preload", "loads code into every process"},
	{"/etc/ld.so.conf", "changes where every program's libraries come from"},
	{"/etc/ld.so.conf.d/**", "changes where every program's libraries come from"},
	{"/etc/cron*/**", "runs commands as root on a schedule"},
	{"/etc/crontab", "runs commands as root on a schedule"},
	{"/var/spool/cron/**", "runs commands as users on a schedule"},
	{"/etc/profile", "runs in every login shell"},
	{"/etc/profile.d/**", "runs in every login shell"},
	{"/etc/environment", "sets the environment of every login"},
	{"/etc/security/**", "changes how logins are limited and authorized"},
	{"/etc/polkit-1/rules.d/**", "grants privileged actions to users"},
	{"/etc/apt/**", "changes what the package manager trusts and runs"},
	{"/etc/modprobe.d/**", "runs commands when kernel modules load"},
	{"/etc/ssh/sshd_config", "changes who may log in remotely"},
	{"/etc/ssh/sshd_config.d/**", "changes who may log in remotely"},
	{"/etc/sysextd/**", "changes sysextd's own trust and configuration"},
	{"/etc/spamtagger/etc/sysext.toml", "is sysextd's manifest"},
	{"/etc/spamtagger/etc/sysext.d/**", "is sysextd's manifest"},
	{"/etc/passwd", "is the user database"},
	{"/etc/shadow", "is the user database"},
	{"/etc/group", "is the group database"},
	{"/etc/gshadow", "is the group database"},
	{"/etc/subuid", "maps user ids"},
	{"/etc/subgid", "maps group ids"},
	{"/etc/nsswitch.conf", "decides where users and hosts are looked up"},
	{"/etc/pam.d/common-*", "is shared by every PAM service"},
	{"/etc/pam.d/other", "is PAM's fallback for every service"},
	{"/etc/systemd/**", "changes how systemd runs units (only enablement links for the image's own units are read, as its install intent)"},
}

// Refusal is one payload entry the policy refuses.
type Refusal struct {
	Path string `json:"path"`
	Why  string `json:"why"`
}

func (r Refusal) String() string { return r.Path + ": " + r.Why }

// PolicyError is a payload the policy refuses; it lists every refused
// entry and says how to allow one.
type PolicyError struct {
	Refused []Refusal
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("the payload is refused: ")
	for i, r := range e.Refused {
		if i > 0 {
			b.WriteString("; ")
		}
		if i == 5 {
			fmt.Fprintf(&b, "and %d more", len(e.Refused)-i)
			break
		}
		b.WriteString(r.String())
	}
	b.WriteString(" (a manifest entry may allow a path with allow_etc = [...]; modes writable by others, setuid and setgid are never allowed)")
	return b.String()
}

// Host tells the policy what the host has at f's path: exists is false
// when nothing is there; ours is true when the extension's record says we
// put it there, or when it already has f's exact content.
type Host func(f image.PayloadFile) (exists, ours bool)

// Verdict is what the policy makes of a payload.
type Verdict struct {
	// Files are the entries to install: the payload minus what is read
	// as intent (enablement links).
	Files []image.PayloadFile
	// Enable are the image's own units its etc/systemd/system/*.wants or
	// *.requires links name: the image's install intent.
	Enable []string
	// Refused lists what may not be installed.
	Refused []Refusal
}

// Err is a *PolicyError when something was refused, else nil.
func (v Verdict) Err() error {
	if len(v.Refused) == 0 {
		return nil
	}
	return &PolicyError{Refused: v.Refused}
}

// Check applies the payload policy to files (as image.ReadPayload returns
// them). allow are the manifest entry's allow_etc paths ("sudoers.d/foo"
// is /etc/sudoers.d/foo; an absolute path names itself; "*" and a trailing
// "/**" as in Privileged). unitFiles are the unit files the image ships in
// usr/lib/systemd/system. host may be nil (nothing exists).
func Check(files []image.PayloadFile, allow []string, unitFiles []string, host Host) Verdict {
	var v Verdict
	ships := map[string]bool{}
	for _, u := range unitFiles {
		ships[u] = true
	}
	allowed := func(p string) bool {
		for _, a := range allow {
			if !strings.HasPrefix(a, "/") {
				a = "/etc/" + a
			}
			if matchPattern(path.Clean(a), p) {
				return true
			}
		}
		return false
	}
	refuse := func(p, why string) { v.Refused = append(v.Refused, Refusal{Path: p, Why: why}) }
	for _, f := range files {
		p := f.Path
		if bad := badMode(f.Mode); bad != "" {
			refuse(p, bad)
			continue
		}
		if u, ok := enablementLink(f, ships); ok {
			v.Enable = append(v.Enable, u)
			continue
		}
		if f.Mode.IsDir() {
			v.Files = append(v.Files, f)
			continue
		}
		if why := privileged(p); why != "" && !allowed(p) {
			refuse(p, why)
			continue
		}
		if host != nil {
			if exists, ours := host(f); exists && !ours && !allowed(p) {
				refuse(p, "would replace a file the host already has")
				continue
			}
		}
		v.Files = append(v.Files, f)
	}
	sort.Strings(v.Enable)
	v.Enable = compact(v.Enable)
	return v
}

// badMode refuses what would give others a way in: world-writable entries
// (a symlink's own mode does not count) and setuid or setgid bits.
func badMode(m iofs.FileMode) string {
	switch {
	case m&iofs.ModeSymlink != 0:
		return ""
	case m&(iofs.ModeSetuid|iofs.ModeSetgid) != 0:
		return fmt.Sprintf("mode %s is setuid or setgid", m)
	case m.Perm()&0o002 != 0:
		return fmt.Sprintf("mode %s is writable by others", m)
	}
	return ""
}

// enablementLink recognises etc/systemd/system/X.wants/U and
// X.requires/U symlinks to a unit the image ships: dpkg's enablement,
// which says the unit is meant to run.
func enablementLink(f image.PayloadFile, ships map[string]bool) (string, bool) {
	if f.Mode&iofs.ModeSymlink == 0 {
		return "", false
	}
	dir, unit := path.Split(f.Path)
	parent := path.Base(path.Clean(dir))
	if path.Dir(path.Clean(dir)) != "/etc/systemd/system" {
		return "", false
	}
	if !strings.HasSuffix(parent, ".wants") && !strings.HasSuffix(parent, ".requires") {
		return "", false
	}
	if !ships[unit] || path.Base(f.Link) != unit {
		return "", false
	}
	return unit, true
}

func privileged(p string) string {
	for _, e := range Privileged {
		if matchPattern(e.Pattern, p) {
			return e.Why
		}
	}
	return ""
}

// matchPattern matches p against pattern: path.Match per component, and a
// trailing "/**" for everything below the prefix.
func matchPattern(pattern, p string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		pc := strings.Split(prefix, "/")
		xc := strings.Split(p, "/")
		if len(xc) <= len(pc) {
			return false
		}
		return matchPattern(prefix, strings.Join(xc[:len(pc)], "/"))
	}
	ok, err := path.Match(pattern, p)
	return err == nil && ok
}

func compact(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
