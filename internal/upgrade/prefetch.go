package upgrade

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/spamtagger/sysextd/internal/facts"
	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// A proposal for the wiring (the engine decides): builds for a staged OS
// wait in StagedRoot/KEY/IMAGE.raw (KEY is Key of the OS: VERSION_ID, else
// VERSION_CODENAME), outside every directory
// systemd-sysext scans and on the same file system as
// /var/lib/extensions, so that putting one in place is a rename.
//
//  1. Prefetch (daemon, after a successful check): s := Staged(ctx, root);
//     when s != nil and its Key differs from the booted one's, plan an
//     install of every installed extension with TargetFacts(hostFacts, s)
//     (the release choice and the image checks then target the staged
//     OS), run only the download and verify phases, and rename each
//     verified file to StagedImage(s.OS, image). Nothing in
//     /var/lib/extensions changes. Prune(root, booted, staged) drops what
//     no OS needs any more.
//  2. First boot (daemon start-up, before READY=1, no network): for each
//     path ForBoot(root, bootedFacts) returns, run an update step whose
//     download phase takes that file instead of downloading it: verify,
//     place, activate, units, action, commit, history — the same
//     transaction, so a build that does not merge is rolled back. Then
//     Prune.
//  3. status: Waiting(root) lists what waits for which OS.

// StagedRoot is the in-root directory of the builds for staged OSes.
const StagedRoot = rootfs.StateDir + "/staged"

var keyRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// Key names the directory of the builds for an OS: its VERSION_ID, else
// its VERSION_CODENAME. Debian testing and unstable have no VERSION_ID
// (forky while it is testing says only VERSION_CODENAME=forky), and the
// staged and the booted OS are both keyed this way, so a build fetched for
// a staged forky is found at the first boot of that forky.
func Key(id osrelease.OS) (string, error) {
	k, field := id.VersionID, "VERSION_ID"
	if k == "" {
		k, field = id.VersionCodename, "VERSION_CODENAME"
	}
	if k == "" {
		return "", errors.New("the OS has neither VERSION_ID nor VERSION_CODENAME: its builds cannot be named")
	}
	if !keyRE.MatchString(k) || k == "." || k == ".." {
		return "", fmt.Errorf("%s %q cannot name a directory", field, k)
	}
	return k, nil
}

// SameKey reports whether a and b share the directory of staged builds
// (the same ID and Key): a staged deployment of the booted OS needs no
// builds of its own.
func SameKey(a, b osrelease.OS) bool {
	ka, errA := Key(a)
	kb, errB := Key(b)
	return a.ID == b.ID && errA == nil && errB == nil && ka == kb
}

// StagedDir is the in-root directory of the builds for OS id.
func StagedDir(id osrelease.OS) (string, error) {
	k, err := Key(id)
	if err != nil {
		return "", err
	}
	return StagedRoot + "/" + k, nil
}

// StagedImage is the in-root path of image's build for OS id.
func StagedImage(id osrelease.OS, image string) (string, error) {
	dir, err := StagedDir(id)
	if err != nil {
		return "", err
	}
	if image == "" || strings.ContainsAny(image, "/\x00") || strings.HasPrefix(image, ".") {
		return "", fmt.Errorf("image name %q cannot name a file", image)
	}
	return dir + "/" + image + ".raw", nil
}

// TargetFacts is host with its OS replaced by the staged one: a plan made
// from it picks, and the verify phase checks, the builds for the next OS.
// The hardware facts stay the host's.
func TargetFacts(host *facts.Facts, s *StagedOS) *facts.Facts {
	f := *host
	f.OS = s.OS
	return &f
}

// Waiting lists the images waiting for each staged OS (by Key), sorted.
// A directory the caller may not read counts as empty: status runs
// unprivileged (create StagedRoot 0755; images are not secret).
func Waiting(root rootfs.Root) (map[string][]string, error) {
	out := map[string][]string{}
	vers, err := os.ReadDir(root.Path(StagedRoot))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", StagedRoot, err)
	}
	for _, v := range vers {
		if !v.IsDir() {
			continue
		}
		imgs, err := os.ReadDir(root.Path(StagedRoot + "/" + v.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading %s/%s: %w", StagedRoot, v.Name(), err)
		}
		for _, im := range imgs {
			if n, ok := strings.CutSuffix(im.Name(), ".raw"); ok && im.Type().IsRegular() && !strings.HasPrefix(n, ".") {
				out[v.Name()] = append(out[v.Name()], n)
			}
		}
		sort.Strings(out[v.Name()])
	}
	return out, nil
}

// ForBoot returns the host paths of the builds waiting for the booted OS
// that pass the image checks against it (a build that does not is left
// where it is and reported in the error, joined). It reads only.
func ForBoot(root rootfs.Root, booted *facts.Facts) ([]string, error) {
	dir, err := StagedDir(booted.OS)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root.Path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	host := image.HostOf(booted.OS, booted.Arch)
	var out []string
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".raw")
		if !ok || !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
			continue
		}
		p := root.Path(dir + "/" + e.Name())
		info, err := image.Inspect(p)
		if err == nil {
			_, err = image.Validate(info, host, name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("staged build %s: %w", p, err))
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, errors.Join(errs...)
}

// Prune removes the builds for every OS but keep (the booted and the
// staged one, matched by Key; an OS without a Key keeps nothing). It
// returns the in-root directories it removed.
func Prune(root rootfs.Root, keep ...osrelease.OS) ([]string, error) {
	var keys []string
	for _, id := range keep {
		if k, err := Key(id); err == nil {
			keys = append(keys, k)
		}
	}
	r, err := root.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	vers, err := fs.ReadDir(r.FS(), rootfs.InRoot(StagedRoot))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", StagedRoot, err)
	}
	var removed []string
	var errs []error
outer:
	for _, v := range vers {
		for _, k := range keys {
			if v.Name() == k {
				continue outer
			}
		}
		p := StagedRoot + "/" + v.Name()
		if err := r.RemoveAll(rootfs.InRoot(p)); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}
