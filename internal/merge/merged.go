package merge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// hierarchies are the trees systemd-sysext overlays (its default, unless
// SYSTEMD_SYSEXT_HIERARCHIES says otherwise).
var hierarchies = []string{"/usr", "/opt"}

// metaDir is the directory systemd-sysext synthesizes at the top of every
// merged hierarchy. It holds "dev" (major:minor of the overlay mount, which
// systemd itself uses to recognise its own mounts) and "extensions" (the
// merged extension names, one a line). systemd 252 through 257 write both.
const metaDir = ".systemd-sysext"

// Merged returns the names of the extensions merged under Root right now,
// sorted and without duplicates; an empty slice when nothing is merged.
//
// It reads the metadata systemd-sysext leaves in each merged hierarchy, the
// same way systemd-sysext itself decides whether a hierarchy is "one of
// ours": the hierarchy's st_dev must equal the device recorded in
// .systemd-sysext/dev (a copied tree is not mistaken for a live merge). This
// works on every systemd version and under --root, where systemd 252's
// `status` looks at the host's /usr instead.
func (s *Sysext) Merged(ctx context.Context) ([]string, error) {
	names := []string{}
	for _, h := range hierarchies {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		got, err := mergedIn(s.Root.Path(h))
		if err != nil {
			return nil, err
		}
		names = append(names, got...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// mergedIn returns the extensions merged into the hierarchy at dir, or none
// when dir is missing or not a live systemd-sysext overlay.
func mergedIn(dir string) ([]string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("checking merged extensions in %s: %w", dir, err)
	}
	devFile := dir + "/" + metaDir + "/dev"
	raw, err := os.ReadFile(devFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checking merged extensions in %s: %w", dir, err)
	}
	major, minor, err := parseDevnum(string(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", devFile, err)
	}
	if unix.Major(st.Dev) != major || unix.Minor(st.Dev) != minor {
		return nil, nil // an offline copy of a merged tree, not a merge
	}
	listFile := dir + "/" + metaDir + "/extensions"
	list, err := os.ReadFile(listFile)
	if err != nil {
		return nil, fmt.Errorf("reading merged extensions: %w", err)
	}
	return parseNames(string(list)), nil
}

// parseDevnum parses systemd's "MAJOR:MINOR" device notation.
func parseDevnum(s string) (major, minor uint32, err error) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, 0, fmt.Errorf("device number %q: want MAJOR:MINOR", s)
	}
	ma, err := strconv.ParseUint(maj, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("device number %q: %w", s, err)
	}
	mi, err := strconv.ParseUint(min, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("device number %q: %w", s, err)
	}
	return uint32(ma), uint32(mi), nil
}

// parseNames splits the newline-separated extensions file.
func parseNames(s string) []string {
	var names []string
	for line := range strings.Lines(s) {
		if name := strings.TrimSpace(line); name != "" {
			names = append(names, name)
		}
	}
	return names
}
