package image

import "github.com/spamtagger/sysextd/internal/osrelease"

// HostOf is the Host an image is checked against, from a tree's OS
// identity (osrelease.ReadOS) and its architecture in Debian's names.
func HostOf(id osrelease.OS, arch string) Host {
	return Host{ID: id.ID, IDLike: id.IDLike, VersionID: id.VersionID, SysextLevel: id.SysextLevel, Arch: arch}
}
