package buildcli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
)

// publishOCI pushes each image of dir (IMAGE_CODENAME_ARCH.squashfs) with
// its .manifest, SHA256SUMS and signatures to the OCI repository of IMAGE
// under to: the artifact and tags sysextctl mirror --to oci:// makes
// (TAG_CODENAME_ARCH, and CODENAME_ARCH unless that names a newer
// release). Logins are read as sysextctl reads them: /etc/sysextd/auth.json
// when this user may, then the user's podman, oras and docker files.
func publishOCI(ctx context.Context, w io.Writer, getenv func(string) string, dir, to, tag string, assets []string, insecure []string) error {
	oci, err := registryClient(getenv, insecure)
	if err != nil {
		return err
	}
	var extra []string
	for _, a := range assets {
		if !strings.HasSuffix(a, ".squashfs") && !strings.HasSuffix(a, ".manifest") {
			extra = append(extra, filepath.Join(dir, a))
		}
	}
	pushed := 0
	for _, a := range assets {
		base, ok := strings.CutSuffix(a, ".squashfs")
		if !ok {
			continue
		}
		parts := strings.Split(base, "_")
		if len(parts) < 3 {
			return fmt.Errorf("%s: not IMAGE_CODENAME_ARCH.squashfs", a)
		}
		image := strings.Join(parts[:len(parts)-2], "_")
		t := source.Target{Codename: parts[len(parts)-2], Arch: parts[len(parts)-1]}
		files := append([]string{filepath.Join(dir, a), filepath.Join(dir, base+".manifest")}, extra...)
		if err := oci.PushFiles(ctx, to, image, tag, t, files); err != nil {
			return err
		}
		fmt.Fprintf(w, "published %s %s to %s as %s\n", image, tag, to, source.OCITag(tag, t))
		pushed++
	}
	if pushed == 0 {
		return fmt.Errorf("%s holds no IMAGE_CODENAME_ARCH.squashfs to push", dir)
	}
	return nil
}

// registryClient reaches registries with the logins sysextctl reads:
// /etc/sysextd/auth.json when this user may, then the user's podman, oras
// and docker files; insecure names the registries reached over plain HTTP.
func registryClient(getenv func(string) string, insecure []string) (*source.OCI, error) {
	logins, warns, err := source.LoadRegistryLogins(source.RegistryLoginFiles(rootfs.RegistryAuth, getenv, true))
	if err != nil {
		return nil, err
	}
	for _, m := range warns {
		fmt.Fprintln(os.Stderr, "sysext-build: warning:", m)
	}
	return source.NewOCI(source.HTTPOptions{}, source.OCIConfig{Logins: logins, Insecure: insecure,
		Warn: func(m string) { fmt.Fprintln(os.Stderr, "sysext-build: warning:", m) }}, ""), nil
}
