package manifest

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// VirtNames are the answers of systemd-detect-virt --list (systemd 252 to
// 257), the only values a virt_env rule can ever match. A name outside the
// list is a warning, not an error: a newer systemd may add one.
var VirtNames = []string{
	"none", "kvm", "amazon", "qemu", "bochs", "xen", "uml", "vmware", "oracle", "microsoft", "zvm",
	"parallels", "bhyve", "qnx", "acrn", "powervm", "apple", "sre", "google", "vm-other",
	"systemd-nspawn", "lxc-libvirt", "lxc", "openvz", "docker", "podman", "rkt", "wsl", "proot",
	"pouch", "container-other",
}

// Keys returns the keys an extension's table may have, from Entry's toml
// tags (so a field added to Entry is a known key at once), sorted.
func Keys() []string {
	var keys []string
	t := reflect.TypeFor[Entry]()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}

// checkVirt returns a warning for a virt_env value systemd never reports.
func checkVirt(v string) string {
	for _, n := range VirtNames {
		if v == n {
			return ""
		}
	}
	msg := fmt.Sprintf("%q is not a virtualization systemd-detect-virt reports, so this rule never matches", v)
	if s := closest(strings.ToLower(strings.TrimSpace(v)), VirtNames); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return msg
}

// closest returns the candidate nearest to s in edit distance, when it is
// near enough to be a likely misspelling, else "".
func closest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := distance(s, c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(2, len(s)/3)
	if bestD < 0 || bestD > limit || bestD >= len(s) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
