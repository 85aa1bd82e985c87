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
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// A proposal for the wiring (the engine decides): builds for a staged OS
// wait in StagedRoot/VERSION_ID/IMAGE.raw, outside every directory
// systemd-sysext scans and on the same file system as
// /var/lib/extensions, so that putting one in place is a rename.
//
//  1. Prefetch (daemon, after a successful check): s := Staged(ctx, root);
//     when s != nil and s.VersionID differs from the booted one, plan an
//     install of every installed extension with TargetFacts(hostFacts, s)
//     (the release choice and the image checks then target the staged
//     OS), run only the download and verify phases, and rename each
//     verified file to StagedImage(s.VersionID, image). Nothing in
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

var versionIDRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// StagedDir is the in-root directory of the builds for OS versionID.
func StagedDir(versionID string) (string, error) {
	if !versionIDRE.MatchString(versionID) || versionID == "." || versionID == ".." {
		return "", fmt.Errorf("VERSION_ID %q cannot name a directory", versionID)
	}
	return StagedRoot + "/" + versionID, nil
}

// StagedImage is the in-root path of image's build for OS versionID.
func StagedImage(versionID, image string) (string, error) {
	dir, err := StagedDir(versionID)
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

// Waiting lists the images waiting for each staged OS version, sorted.
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
	dir, err := StagedDir(booted.OS.VersionID)
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

// Prune removes the builds for every OS version but keep (the booted and
// the staged one; empty strings are ignored). It returns the in-root
// directories it removed.
func Prune(root rootfs.Root, keep ...string) ([]string, error) {
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
		for _, k := range keep {
			if k != "" && v.Name() == k {
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
