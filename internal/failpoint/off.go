//go:build !failpoints

package failpoint

// Hit does nothing in a normal build.
func Hit(string) {}

// Enabled reports whether this binary was built with failpoints.
const Enabled = false
