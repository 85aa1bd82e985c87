package cli

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// localImage is an image file, or an OCI repository, named on the
// install command line; the engine plans its install (engine.LocalImage).
type localImage struct {
	path string // absolute
	name string // extension name
	oci  string // oci://REGISTRY/REPO[:TAG] instead of a file
}

// isImagePath tells a file argument from an extension name: names never
// contain "/" and never end in .raw.
func isImagePath(arg string) bool {
	return strings.Contains(arg, "/") || strings.HasSuffix(arg, ".raw") || strings.HasSuffix(arg, ".squashfs")
}

// localImages splits install's arguments into extension names and image
// files. With --image FILE, the one argument is the name; otherwise the
// name comes from the file name: sysext-foo.raw is foo.
func localImages(imageFlag string, args []string) (names []string, imgs []localImage, err error) {
	if imageFlag != "" {
		if len(args) != 1 || isImagePath(args[0]) {
			return nil, nil, fmt.Errorf("--image %s takes exactly one extension NAME", imageFlag)
		}
		p, err := filepath.Abs(imageFlag)
		if err != nil {
			return nil, nil, err
		}
		return args, []localImage{{path: p, name: args[0]}}, nil
	}
	for _, a := range args {
		if strings.HasPrefix(strings.ToLower(a), "oci://") {
			ref, err := sourceref.Parse(a)
			if err != nil {
				return nil, nil, err
			}
			name := strings.TrimPrefix(path.Base(ref.Path), "sysext-")
			names = append(names, name)
			imgs = append(imgs, localImage{name: name, oci: a})
			continue
		}
		if !isImagePath(a) {
			names = append(names, a)
			continue
		}
		p, err := filepath.Abs(a)
		if err != nil {
			return nil, nil, err
		}
		base := filepath.Base(p)
		for _, ext := range []string{".raw", ".squashfs"} {
			base = strings.TrimSuffix(base, ext)
		}
		name := strings.TrimPrefix(base, "sysext-")
		if name == "" {
			return nil, nil, fmt.Errorf("%s: cannot tell the extension name from the file name (use --image FILE NAME)", a)
		}
		names = append(names, name)
		imgs = append(imgs, localImage{path: p, name: name})
	}
	return names, imgs, nil
}
