package store

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// MarkRebootRequired follows Debian's convention: /run/reboot-required and
// the package name appended once to /run/reboot-required.pkgs. /run is a
// tmpfs, so a reboot clears both.
func MarkRebootRequired(root rootfs.Root, pkg string) error {
	if err := root.WriteFile(rootfs.RebootRequired, []byte("*** System restart required ***\n"), 0o644); err != nil {
		return fmt.Errorf("marking reboot required: %w", err)
	}
	if RebootPending(root)[pkg] {
		return nil
	}
	if err := root.AppendLine(rootfs.RebootRequiredPkgs, pkg, 0o644); err != nil {
		return fmt.Errorf("marking reboot required: %w", err)
	}
	return nil
}

// RebootPending reads /run/reboot-required.pkgs; the set is empty unless
// /run/reboot-required exists.
func RebootPending(root rootfs.Root) map[string]bool {
	out := map[string]bool{}
	h, err := root.Open()
	if err != nil {
		return out
	}
	defer h.Close()
	if _, err := h.Stat(rootfs.InRoot(rootfs.RebootRequired)); err != nil {
		return out
	}
	f, err := h.Open(rootfs.InRoot(rootfs.RebootRequiredPkgs))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p := strings.TrimSpace(sc.Text()); p != "" {
			out[p] = true
		}
	}
	return out
}
