package image

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"strconv"
)

// ErrBadName: an image directory holds an entry whose name no real file
// system produces: empty, ".", "..", or containing "/", NUL or a control
// character. unsquashfs refuses such images ("invalid characters in
// name"); a reader that accepted them would let a joined path escape the
// directory it names (etc/../root/.ssh/...).
var ErrBadName = errors.New("invalid entry name")

// CheckName refuses what unsquashfs refuses, plus control characters: a
// name is one path component, never a path. dir is the listed directory,
// for the message.
func CheckName(dir, name string) error { return checkName(dir, name) }

func checkName(dir, name string) error {
	bad := name == "" || name == "." || name == ".."
	for i := 0; !bad && i < len(name); i++ {
		c := name[i]
		bad = c == '/' || c < 0x20 || c == 0x7f
	}
	if bad {
		return fmt.Errorf("%w %s in %s", ErrBadName, strconv.Quote(name), displayDir(dir))
	}
	return nil
}

// checkNames checks every entry of the listing of dir.
func checkNames(dir string, es []iofs.DirEntry) error {
	for _, e := range es {
		if err := checkName(dir, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

func displayDir(dir string) string {
	if dir == "" || dir == "." {
		return "/"
	}
	return "/" + dir
}
