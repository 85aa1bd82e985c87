package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/manifest"
)

// Field is one KEY=VALUE line of an extension-release file.
type Field struct{ Key, Value string }

// BuildTimeLayout is how the template writes BUILD_TIME (date
// +%Y-%m-%dT%H:%M:%S on a UTC runner); we always write UTC.
const BuildTimeLayout = "2006-01-02T15:04:05"

// TagLayout is the release tag the template's workflow generates.
const TagLayout = "2006.01.02-1504"

// ReleaseFields returns the extension-release fields of one image, in the
// template's order (ID VERSION_ID NAME PACKAGE PACKAGE_VERSION ARCH
// VERSION_CODENAME BUILD_TIME REPOSITORY), then ARCHITECTURE, which systemd
// checks, UPDATE from metadata.json's update, which the manager reads, and
// for "service: UNIT[, UNIT...]" EXTENSION_RESTART_UNITS= with those units,
// space-separated, which systemd-sysext 262 reads.
func ReleaseFields(m *Metadata, dist, arch, pkgVersion string, built time.Time) []Field {
	f := []Field{
		{"ID", "debian"},
		{"VERSION_ID", VersionIDs[dist]},
		{"NAME", m.Name},
		{"PACKAGE", m.Package},
		{"PACKAGE_VERSION", pkgVersion},
		{"ARCH", arch},
		{"VERSION_CODENAME", dist},
		{"BUILD_TIME", built.UTC().Format(BuildTimeLayout)},
		{"REPOSITORY", m.Repository},
		{"ARCHITECTURE", image.DebianToSystemdArch(arch)},
	}
	if m.Update != "" {
		f = append(f, Field{"UPDATE", m.Update})
	}
	// systemd-sysext >= 262 restarts these units itself after merge,
	// refresh and unmerge (systemd#42368); sysextd does it on older ones.
	if a, err := manifest.ParseAction(m.Update); err == nil && a.Kind == manifest.ActionService && len(a.Units) > 0 {
		f = append(f, Field{image.FieldRestartUnits, strings.Join(a.Units, " ")})
	}
	return f
}

// FormatFields writes fields as KEY=VALUE lines; values with characters a
// shell would split or expand are double-quoted (os-release syntax), so
// that `source NAME.manifest` works as the template's workflow does it.
func FormatFields(fields []Field) []byte {
	var b strings.Builder
	for _, f := range fields {
		v := f.Value
		if strings.ContainsAny(v, " \t\"'$`\\;&|<>()*?#~") {
			r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")
			v = `"` + r.Replace(v) + `"`
		}
		fmt.Fprintf(&b, "%s=%s\n", f.Key, v)
	}
	return []byte(b.String())
}

// ReleaseJSON is release.json. version, date and package_versions are
// what the template writes and sysextd reads; packages (every Debian
// package in each image, with its version) is what `check` compares.
type ReleaseJSON struct {
	Version         string                       `json:"version"`
	Date            string                       `json:"date"`
	PackageVersions map[string]string            `json:"package_versions"`
	Packages        map[string]map[string]string `json:"packages,omitempty"`
	Builder         string                       `json:"builder,omitempty"`
}

// Key is the package_versions key of an image: DIST_ARCH.
func Key(dist, arch string) string { return dist + "_" + arch }

// WriteSHA256SUMS writes dir/SHA256SUMS for files (names in dir), in the
// format sha256sum -c reads.
func WriteSHA256SUMS(dir string, files []string) error {
	files = slices.Sorted(slices.Values(files))
	var b strings.Builder
	for _, name := range files {
		sum, err := FileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, name)
	}
	return writeFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()))
}

// FileSHA256 is the hex sha256 of the file at p.
func FileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeJSON(p string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(p, append(data, '\n'))
}

// writeFile writes data beside p and renames it into place.
func writeFile(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return os.Rename(tmp.Name(), p)
}
