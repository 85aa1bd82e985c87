package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// ErrLocked is returned by Lock with block=false when another process holds
// the lock.
var ErrLocked = errors.New("another sysextctl or sysextd is changing extensions")

// Lock takes the one lock that serializes every mutation, CLI and daemon
// alike. With block, it waits (calling waiting once, so the caller can say
// so) until the lock is free or ctx ends. The returned func releases it.
func (s Store) Lock(ctx context.Context, block bool, waiting func()) (func(), error) {
	path := s.Root.Path(rootfs.StateDir + "/lock")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", rootfs.StateDir, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
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
