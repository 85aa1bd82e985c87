package engine

// Observer hears what a run does while it does it: the phase each step
// enters and the bytes of its download. The daemon's API streams these to
// the caller of a mutating method (internal/api). Calls come from the
// goroutine that runs the step, so an Observer must return quickly and
// never block on its consumer.
type Observer interface {
	// Phase is called when the step of extension name enters phase p.
	Phase(name string, p Phase)
	// Progress is called while the image of extension name downloads:
	// done of total bytes (total 0 when unknown).
	Progress(name string, done, total int64)
}

// phase tells the engine's Observer, if any, that the step of name
// entered p.
func (e *Engine) phase(name string, p Phase) {
	if e.Observer != nil {
		e.Observer.Phase(name, p)
	}
}
