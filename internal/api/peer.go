package api

import (
	"errors"
	"fmt"
	"net"
	"os/user"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Peer is who is at the other end of a connection, from the kernel
// (SO_PEERCRED and SO_PEERGROUPS), as it was when the peer connected.
type Peer struct {
	UID    uint32
	GID    uint32
	PID    int32
	Groups []uint32 // supplementary groups
}

// PeerOf reads the credentials of a Unix socket's peer.
func PeerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("peer credentials: %T is not a Unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var p Peer
	var serr error
	err = raw.Control(func(fd uintptr) {
		var cred *unix.Ucred
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if serr != nil {
			serr = fmt.Errorf("SO_PEERCRED: %w", serr)
			return
		}
		p = Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}
		p.Groups, serr = peerGroups(int(fd))
	})
	if err = errors.Join(err, serr); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	return p, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13): the peer's supplementary
// groups, growing the buffer when the kernel says it is too small.
func peerGroups(fd int) ([]uint32, error) {
	n := 64
	for range 4 {
		buf := make([]uint32, n)
		size := uint32(n * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch errno {
		case 0:
			return buf[:size/4], nil
		case unix.ERANGE:
			n = int(size/4) + 1
		default:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		}
	}
	return nil, errors.New("SO_PEERGROUPS: the group list keeps growing")
}

// mayChange reports whether p may call the mutating methods: uid 0, or a
// member (primary or supplementary) of group, which "" leaves to root
// alone. The reason says why not, for PermissionDenied.
func (p Peer) mayChange(group string) (ok bool, reason string) {
	if p.UID == 0 {
		return true, ""
	}
	if group == "" {
		return false, fmt.Sprintf("uid %d may not change extensions: only root may (sysextd.toml sets no admin_group)", p.UID)
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return false, fmt.Sprintf("uid %d may not change extensions: admin_group %q: %v", p.UID, group, err)
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return false, fmt.Sprintf("admin_group %q has gid %q", group, g.Gid)
	}
	if p.GID == uint32(gid) || slices.Contains(p.Groups, uint32(gid)) {
		return true, ""
	}
	return false, fmt.Sprintf("uid %d may not change extensions: it is neither root nor in admin_group %s", p.UID, group)
}
