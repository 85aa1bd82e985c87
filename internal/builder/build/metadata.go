// Package build turns a sysext template's metadata.json into release
// assets: for each dist and architecture an IMAGE_DIST_ARCH.squashfs and
// its .manifest, plus release.json and SHA256SUMS. Dependencies are
// resolved and unpacked with internal/builder/debian; nothing runs as root and no
// container is needed.
package build

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/manifest"
)

// Metadata is the template's metadata.json.
type Metadata struct {
	Name          string   `json:"name"`
	Description   string   `json:"description"`
	Architectures []string `json:"architectures"`
	Dists         []string `json:"dists"`
	Component     string   `json:"component"`
	Package       string   `json:"package"`
	Update        string   `json:"update"`
	Repository    string   `json:"repository"`
}

// VersionIDs maps the Debian codenames sysext-build knows to VERSION_ID.
var VersionIDs = map[string]string{
	"bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14", "duke": "15",
}

var (
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	packagePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)
)

// LoadMetadata reads and checks metadata.json. Every problem is reported
// with the file name; a JSON syntax error also with its line.
func LoadMetadata(path string) (*Metadata, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMetadata(data, path)
}

// ParseMetadata is LoadMetadata on data read from file name.
func ParseMetadata(data []byte, name string) (*Metadata, error) {
	var m Metadata
	if err := json.Unmarshal(data, &m); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%s:%d: %v", name, lineOf(data, se.Offset), err)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%s:%d: field %s: %v", name, lineOf(data, te.Offset), te.Field, err)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var problems []string
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	if !namePattern.MatchString(m.Name) {
		bad("name %q: want letters, digits, . _ + - (it names the image files)", m.Name)
	}
	if !packagePattern.MatchString(m.Package) {
		bad("package %q is not a Debian package name", m.Package)
	}
	if m.Component == "" {
		m.Component = "main"
	}
	if len(m.Dists) == 0 {
		bad("dists is empty")
	}
	for _, d := range m.Dists {
		if VersionIDs[d] == "" {
			bad("dist %q: unknown codename (known: bookworm, trixie, forky, duke)", d)
		}
	}
	if len(m.Architectures) == 0 {
		bad("architectures is empty")
	}
	for _, a := range m.Architectures {
		if image.DebianToSystemdArch(a) == "" {
			bad("architecture %q: not a Debian architecture", a)
		}
	}
	if _, err := manifest.ParseAction(m.Update); err != nil {
		bad("update %q: %v", m.Update, err)
	}
	if m.Repository != "" && !strings.HasPrefix(m.Repository, "https://") && !strings.HasPrefix(m.Repository, "http://") {
		bad("repository %q: want a URL", m.Repository)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %s", name, strings.Join(problems, "; "))
	}
	return &m, nil
}

func lineOf(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// ImageBase is the file name of an image's assets without suffix:
// NAME_DIST_ARCH.
func ImageBase(name, dist, arch string) string { return name + "_" + dist + "_" + arch }
