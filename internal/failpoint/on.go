//go:build failpoints

package failpoint

import (
	"os"
	"syscall"
)

// Enabled reports whether this binary was built with failpoints.
const Enabled = true

var armed = os.Getenv(Env)

// Hit kills the process with SIGKILL when name is the armed failpoint.
func Hit(name string) {
	if armed != "" && armed == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
