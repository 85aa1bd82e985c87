package cli

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/sourceref"
)

// localImage is an image file, or an OCI repository, named on the
// install command line.
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

// pinLocal makes the manifest set answer each local image's name from its
// file: an existing entry keeps its rules and image name but its url
// becomes the file (for this command only, nothing is written); a name no
// manifest knows gets an entry of its own, so that update later leaves it
// alone ("no manifest entry").
func pinLocal(set *manifest.Set, imgs []localImage) error {
	for _, li := range imgs {
		if li.oci != "" {
			pinOCI(set, li)
			continue
		}
		fi, err := os.Stat(li.path)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", li.path)
		}
		var en manifest.Entry
		if cur := set.Get(li.name); cur != nil {
			en = *cur
		} else {
			en = manifest.Entry{Name: li.name, Source: "command line", Local: true}
			if base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(li.path), ".raw"), ".squashfs"); base != "sysext-"+li.name && base != li.name {
				en.Asset = base
			}
		}
		en.URL, en.Mirrors, en.Prerelease = li.path, nil, false
		if set.Entries == nil {
			set.Entries = map[string]*manifest.Entry{}
		}
		set.Entries[li.name] = &en
	}
	return nil
}

// pinOCI makes the manifest set answer li's name from its OCI repository
// (install oci://REGISTRY/REPO[:TAG]), as pinLocal does from a file: an
// existing entry keeps its rules and image name; a new one takes the
// repository's last component as its image name.
func pinOCI(set *manifest.Set, li localImage) {
	var en manifest.Entry
	if cur := set.Get(li.name); cur != nil {
		en = *cur
	} else {
		ref, _ := sourceref.Parse(li.oci) // parsed by localImages
		en = manifest.Entry{Name: li.name, Source: "command line", Local: true, Asset: path.Base(ref.Path)}
	}
	en.URL, en.Mirrors = li.oci, nil
	if set.Entries == nil {
		set.Entries = map[string]*manifest.Entry{}
	}
	set.Entries[li.name] = &en
}
