// Package termbar draws the one-line download progress bar that
// sysextctl shows on a terminal, whether the download runs in-process
// (internal/source) or in sysextd (internal/cli, from the API's events).
package termbar

import (
	"fmt"
	"io"
	"strings"
)

// Width is the bar's width in characters.
const Width = 30

// Draw redraws the line for name with done of total bytes (total <= 0:
// unknown, only the amount is shown). It starts with a carriage return
// and ends without a newline.
func Draw(w io.Writer, name string, done, total int64) {
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	if total <= 0 {
		fmt.Fprintf(w, "\r%s %.1f MiB", name, mib(done))
		return
	}
	frac := min(float64(done)/float64(total), 1)
	full := int(frac * Width)
	fmt.Fprintf(w, "\r%s [%s%s] %3.0f%% %.1f/%.1f MiB", name,
		strings.Repeat("=", full), strings.Repeat(" ", Width-full), frac*100, mib(done), mib(total))
}
