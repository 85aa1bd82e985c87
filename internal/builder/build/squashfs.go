package build

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/builder/debian"
)

// CommandError is a failed external command with what it wrote.
type CommandError struct {
	Argv     []string
	ExitCode int
	Stderr   string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: exit %d: %s", strings.Join(e.Argv, " "), e.ExitCode, strings.TrimSpace(e.Stderr))
}

// pseudoFile returns mksquashfs pseudo definitions ("PATH m MODE UID GID")
// for every path under dir: declared entries get their package's owner
// and mode, anything else (directories created on the way, the
// extension-release file) root and its on-disk permissions. With it the
// image is right whoever runs the build.
func pseudoFile(dir string, entries map[string]*debian.Entry) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("/ m 755 0 0\n")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		mode, uid, gid := int64(0o644), 0, 0
		if e, ok := entries[rel]; ok {
			mode, uid, gid = e.Mode, e.UID, e.GID
			if e.Type == tar.TypeSymlink {
				mode = 0o777
			}
		} else {
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode = int64(info.Mode().Perm())
		}
		fmt.Fprintf(&b, "%s m %o %d %d\n", quotePseudo(rel), mode, uid, gid)
		return nil
	})
	return b.Bytes(), err
}

// quotePseudo quotes a path for a pseudo file (squashfs-tools >= 4.5).
func quotePseudo(p string) string {
	if !strings.ContainsAny(p, " \t\"\\") {
		return p
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
}

// mksquashfsPath finds mksquashfs on PATH, else (a bare environment, such
// as `env -i HOME=... sysext-build`, has no PATH) where Debian installs it.
func mksquashfsPath() string {
	if p, err := exec.LookPath("mksquashfs"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/mksquashfs", "/usr/sbin/mksquashfs", "/bin/mksquashfs"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "mksquashfs"
}

// Mksquashfs packs dir into out with zstd, replacing out, with owners and
// modes from entries (see pseudoFile). Extended attributes of the build
// host are not carried.
func Mksquashfs(ctx context.Context, dir, out string, entries map[string]*debian.Entry) error {
	pf, err := pseudoFile(dir, entries)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	pfPath := out + ".pseudo"
	if err := os.WriteFile(pfPath, pf, 0o644); err != nil {
		return err
	}
	defer os.Remove(pfPath)
	argv := []string{mksquashfsPath(), dir, out, "-comp", "zstd", "-noappend", "-no-progress", "-quiet", "-no-xattrs", "-pf", pfPath}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return &CommandError{Argv: argv, ExitCode: code, Stderr: stderr.String() + err.Error()}
	}
	if s := stderr.String(); strings.Contains(strings.ToLower(s), "error") {
		return &CommandError{Argv: argv, ExitCode: 0, Stderr: s}
	}
	return nil
}
