package fetch

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line bar on a terminal, at most ten times a second.
type progress struct {
	w     io.Writer
	name  string
	total int64
	n     int64
	last  time.Time
}

func newProgress(w io.Writer, name string, total int64) *progress {
	return &progress{w: w, name: name, total: total}
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	const width = 30
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%s %.1f MiB", p.name, mib(p.n))
		return
	}
	frac := min(float64(p.n)/float64(p.total), 1)
	full := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %.1f/%.1f MiB", p.name,
		strings.Repeat("=", full), strings.Repeat(" ", width-full), frac*100, mib(p.n), mib(p.total))
}

// done draws the final state and ends the line.
func (p *progress) done() {
	p.draw()
	fmt.Fprintln(p.w)
}
