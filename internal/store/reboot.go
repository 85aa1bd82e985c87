package store

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// MarkRebootRequired follows Debian's convention: /run/reboot-required and
// the package name appended once to /run/reboot-required.pkgs. /run is a
// tmpfs, so a reboot clears both.
func MarkRebootRequired(root rootfs.Root, pkg string) error {
	if err := os.MkdirAll(root.Path("/run"), 0o755); err != nil {
		return fmt.Errorf("marking reboot required: %w", err)
	}
	if err := os.WriteFile(root.Path(rootfs.RebootRequired), []byte("*** System restart required ***\n"), 0o644); err != nil {
		return fmt.Errorf("marking reboot required: %w", err)
	}
	if RebootPending(root)[pkg] {
		return nil
	}
	f, err := os.OpenFile(root.Path(rootfs.RebootRequiredPkgs), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("marking reboot required: %w", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, pkg); err != nil {
		return fmt.Errorf("marking reboot required: %w", err)
	}
	return nil
}

// RebootPending reads /run/reboot-required.pkgs; the set is empty unless
// /run/reboot-required exists.
func RebootPending(root rootfs.Root) map[string]bool {
	out := map[string]bool{}
	if _, err := os.Stat(root.Path(rootfs.RebootRequired)); err != nil {
		return out
	}
	f, err := os.Open(root.Path(rootfs.RebootRequiredPkgs))
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
