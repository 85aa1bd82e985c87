package facts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/rules"
)

// VirtDetector asks systemd which virtualization it runs under.
type VirtDetector = rules.VirtDetector

// Options tune Gather.
type Options = rules.Options

// DetectVirtCommand runs systemd-detect-virt.
func DetectVirtCommand(ctx context.Context) (string, error) { return rules.DetectVirtCommand(ctx) }

// Gather reads the facts of the system under root: the OS and what every
// rule kind looks at.
func Gather(ctx context.Context, root rootfs.Root, opts Options) (*Facts, error) {
	f := &Facts{Arch: HostArch()}
	var err error
	if f.OS, err = readOS(root); err != nil {
		return nil, err
	}
	if f.Facts, err = rules.Gather(ctx, root, opts); err != nil {
		return nil, err
	}
	return f, nil
}

func readOS(root rootfs.Root) (OS, error) {
	for _, p := range []string{rootfs.EtcOSRelease, rootfs.UsrOSRelease} {
		data, err := os.ReadFile(root.Path(p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return OS{}, fmt.Errorf("reading %s: %w", p, err)
		}
		kv := osrelease.Parse(data)
		return OS{ID: kv["ID"], IDLike: kv["ID_LIKE"], VersionID: kv["VERSION_ID"], VersionCodename: kv["VERSION_CODENAME"], SysextLevel: kv["SYSEXT_LEVEL"]}, nil
	}
	return OS{}, nil
}
