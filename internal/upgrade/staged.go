// Package upgrade knows about the next OS: the deployment bootc has staged
// for the next boot, and the os-release it will boot with, so that builds
// of the installed extensions for that OS can be fetched before the
// reboot (docs/upgrades.md).
package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/rootfs"
)

// StagedOS is the OS of the deployment staged for the next boot.
type StagedOS struct {
	// OS is the staged tree's os-release identity (ID_LIKE and
	// SYSEXT_LEVEL included: systemd-sysext matches images against them).
	osrelease.OS
	// Image and ImageDigest are the container image the deployment was
	// made from, when bootc knows it.
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"image_digest,omitempty"`
	// Stateroot, Checksum and DeploySerial name the ostree deployment;
	// Tree is its checkout, an in-root path.
	Stateroot    string `json:"stateroot"`
	Checksum     string `json:"checksum"`
	DeploySerial uint32 `json:"deploy_serial"`
	Tree         string `json:"tree"`
}

// Host is the part of `bootc status --json` (org.containers.bootc/v1,
// docs/src/host-v1.schema.json in containers/bootc) this package reads.
type Host struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Status     struct {
		Booted *BootEntry `json:"booted"`
		Staged *BootEntry `json:"staged"`
	} `json:"status"`
}

// BootEntry is one deployment in bootc's status.
type BootEntry struct {
	Image *struct {
		Image struct {
			Image     string `json:"image"`
			Transport string `json:"transport"`
		} `json:"image"`
		Version     *string `json:"version"`
		ImageDigest string  `json:"imageDigest"`
	} `json:"image"`
	Ostree *struct {
		// Stateroot is printed by newer bootc versions only; without it
		// the deployment is looked for in every stateroot.
		Stateroot    string `json:"stateroot"`
		Checksum     string `json:"checksum"`
		DeploySerial uint32 `json:"deploySerial"`
	} `json:"ostree"`
}

// ErrNoBootc means bootc is not installed: the host is not upgraded by
// bootc, and there is never a staged deployment.
var ErrNoBootc = errors.New("bootc is not installed")

// StatusFunc returns the output of `bootc status --json`.
type StatusFunc func(ctx context.Context) ([]byte, error)

// statusTimeout bounds one `bootc status`.
const statusTimeout = 30 * time.Second

// BootcStatus runs `bootc status --json`; ErrNoBootc when bootc is not in
// PATH. Errors carry the argv, exit code and stderr.
func BootcStatus(ctx context.Context) ([]byte, error) {
	bin, err := exec.LookPath("bootc")
	if err != nil {
		return nil, ErrNoBootc
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "status", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return nil, fmt.Errorf("running %s status --json (exit %d): %w: %s", bin, code, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Staged returns the OS of the deployment bootc has staged for the next
// boot, or nil when there is none, bootc is not installed, the host is not
// a bootc host, or root is not the host (bootc describes the running
// system only).
func Staged(ctx context.Context, root rootfs.Root) (*StagedOS, error) {
	if !root.IsHost() {
		return nil, nil
	}
	return StagedFrom(ctx, root, BootcStatus)
}

// StagedFrom is Staged with the bootc status taken from status, and the
// deployment's tree looked for under root.
func StagedFrom(ctx context.Context, root rootfs.Root, status StatusFunc) (*StagedOS, error) {
	out, err := status(ctx)
	if errors.Is(err, ErrNoBootc) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h, err := ParseStatus(out)
	if err != nil {
		return nil, err
	}
	if h.Status.Booted == nil || h.Status.Staged == nil {
		return nil, nil
	}
	return FromEntry(root, h.Status.Staged)
}

// ParseStatus decodes `bootc status --json` output.
func ParseStatus(data []byte) (*Host, error) {
	var h Host
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("parsing bootc status: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parsing bootc status: trailing data after the JSON object")
	}
	if h.Kind != "" && h.Kind != "BootcHost" {
		return nil, fmt.Errorf("parsing bootc status: kind %q, want BootcHost", h.Kind)
	}
	return &h, nil
}

var (
	checksumRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	stateRootRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// deployRoots are where ostree keeps deployments: /ostree is a symlink to
// sysroot/ostree on a booted ostree system.
var deployRoots = []string{"/sysroot/ostree/deploy", "/ostree/deploy"}

// FromEntry finds the checkout of an ostree deployment under root and
// reads its os-release.
func FromEntry(root rootfs.Root, e *BootEntry) (*StagedOS, error) {
	if e.Ostree == nil {
		return nil, errors.New("the staged deployment is not ostree-based: its tree cannot be found")
	}
	o := e.Ostree
	if !checksumRE.MatchString(o.Checksum) || (o.Stateroot != "" && !stateRootRE.MatchString(o.Stateroot)) || o.Stateroot == "." || o.Stateroot == ".." {
		return nil, fmt.Errorf("the staged deployment has a malformed name: stateroot %q, checksum %q", o.Stateroot, o.Checksum)
	}
	s := &StagedOS{Stateroot: o.Stateroot, Checksum: o.Checksum, DeploySerial: o.DeploySerial}
	if e.Image != nil {
		s.Image, s.ImageDigest = e.Image.Image.Image, e.Image.ImageDigest
	}
	tree, err := findTree(root, o.Stateroot, fmt.Sprintf("%s.%d", o.Checksum, o.DeploySerial))
	if err != nil {
		return nil, err
	}
	s.Tree = tree
	if s.Stateroot == "" {
		s.Stateroot = path.Base(path.Dir(path.Dir(tree)))
	}
	if s.OS, err = readOS(root, tree); err != nil {
		return nil, err
	}
	if s.ID == "" || (s.VersionID == "" && s.VersionCodename == "") {
		return nil, fmt.Errorf("the os-release of the staged deployment %s has no ID or neither VERSION_ID nor VERSION_CODENAME", tree)
	}
	return s, nil
}

// findTree returns the in-root path of deploy/NAME in stateroot (or in
// the only stateroot that has it, when stateroot is empty).
func findTree(root rootfs.Root, stateroot, name string) (string, error) {
	r, err := root.Open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	var found []string
	for _, base := range deployRoots {
		roots := []string{stateroot}
		if stateroot == "" {
			entries, err := fs.ReadDir(r.FS(), rootfs.InRoot(base))
			if err != nil {
				continue
			}
			roots = roots[:0]
			for _, e := range entries {
				roots = append(roots, e.Name())
			}
		}
		for _, sr := range roots {
			p := base + "/" + sr + "/deploy/" + name
			if fi, err := r.Stat(rootfs.InRoot(p)); err == nil && fi.IsDir() {
				found = append(found, p)
			}
		}
		if len(found) > 0 {
			break // /ostree is usually sysroot/ostree: the same trees again
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("the staged deployment %s is not under %s", name, strings.Join(deployRoots, " or "))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("the staged deployment %s is in more than one stateroot: %s", name, strings.Join(found, ", "))
}

// readOS reads the OS identity of a tree (osrelease.ReadOS: etc/os-release,
// in a deployment a relative symlink to usr/lib/os-release, then
// usr/lib/os-release), resolving symlinks inside the tree.
func readOS(root rootfs.Root, tree string) (osrelease.OS, error) {
	r, err := root.Open()
	if err != nil {
		return osrelease.OS{}, err
	}
	defer r.Close()
	t, err := r.OpenRoot(rootfs.InRoot(tree))
	if err != nil {
		return osrelease.OS{}, fmt.Errorf("reading the os-release of the staged deployment: %w", err)
	}
	defer t.Close()
	id, _, err := osrelease.ReadOS(t)
	if err != nil {
		return osrelease.OS{}, fmt.Errorf("reading the os-release of the staged deployment: %w", err)
	}
	return id, nil
}
