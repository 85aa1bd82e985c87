package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// ErrLocked is returned by Lock with block=false when another process holds
// the lock.
var ErrLocked = errors.New("another sysextctl or sysextd is changing extensions")

const lockRel = rootfs.StateDir + "/lock"

// LockPath is the host path of the lock file.
func (s Store) LockPath() string { return s.Root.Path(lockRel) }

// Lock takes the one lock that serializes every mutation, CLI and daemon
// alike. With block, it waits (calling waiting once, so the caller can say
// so) until the lock is free or ctx ends. The returned func releases it.
func (s Store) Lock(ctx context.Context, block bool, waiting func()) (func(), error) {
	path := s.LockPath()
	if err := s.mkdir(rootfs.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", rootfs.StateDir, err)
	}
	r, err := s.Root.Open()
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	f, err := r.OpenFile(rootfs.InRoot(lockRel), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	// flock(2) works on a read-only descriptor: a lock file anyone can open
	// is a lock anyone can hold. Only root may open this one (an older
	// release created it 0644).
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("securing %s: %w", path, err)
	}
	release := func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
	told := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return release, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !block {
			f.Close()
			return nil, ErrLocked
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
