package source

import (
	"fmt"
	"io"
	"time"

	"github.com/spamtagger/sysextd/internal/termbar"
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

func (p *progress) draw() { termbar.Draw(p.w, p.name, p.n, p.total) }

// done draws the final state and ends the line.
func (p *progress) done() {
	p.draw()
	fmt.Fprintln(p.w)
}

// ProgressTee is a HTTPOptions.Tee that draws a bar on w (a
// terminal) and reports to fn; either may be nil, and with both nil it is
// nil (no tee).
func ProgressTee(w io.Writer, fn func(asset string, done, total int64)) func(a Asset) (io.Writer, func()) {
	if w == nil && fn == nil {
		return nil
	}
	return func(a Asset) (io.Writer, func()) {
		var ws []io.Writer
		var dones []func()
		if w != nil {
			p := newProgress(w, a.Name, a.Size)
			ws, dones = append(ws, p), append(dones, p.done)
		}
		if fn != nil {
			c := &counter{fn: fn, name: a.Name, total: a.Size}
			ws, dones = append(ws, c), append(dones, c.done)
		}
		return io.MultiWriter(ws...), func() {
			for _, d := range dones {
				d()
			}
		}
	}
}

// counter reports the bytes written to it to fn, at most ten times a
// second and once when done.
type counter struct {
	fn       func(asset string, done, total int64)
	name     string
	total, n int64
	last     time.Time
}

func (c *counter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	if now := time.Now(); now.Sub(c.last) >= 100*time.Millisecond {
		c.last = now
		c.fn(c.name, c.n, c.total)
	}
	return len(b), nil
}

func (c *counter) done() { c.fn(c.name, c.n, c.total) }
