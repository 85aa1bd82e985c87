package api

import (
	"context"
	"fmt"
	"sync"

	"github.com/varlink/go/varlink"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/store"
)

// change runs a plan-making mutating method: with dryRun it only plans
// (any caller, no lock: nothing changes), else it plans and applies under
// the lock, streaming progress to a caller that asked for more.
func (s *Server) change(ctx context.Context, c *varlink.Call, dryRun bool, plan func(context.Context, *engine.Engine) (*engine.Plan, error)) error {
	if dryRun {
		return s.read(ctx, c, func(sess *Session) (any, error) {
			p, err := plan(ctx, sess.Engine)
			return struct {
				Plan *engine.Plan `json:"plan"`
			}{p}, err
		})
	}
	return s.locked(ctx, c, c.WantsMore(), func(ctx context.Context, sess *Session) (any, error) {
		p, err := plan(ctx, sess.Engine)
		if err != nil {
			return nil, err
		}
		results := sess.Engine.Apply(ctx, p)
		sess.Engine.RecordHistory(p.Verb, HistoryByAPI, results)
		_, _, networkOnly := engine.Summary(results)
		if results == nil {
			results = []engine.Result{}
		}
		warnings := p.Warnings
		if warnings == nil {
			warnings = []string{}
		}
		return Outcome{Verb: p.Verb, Results: results, Warnings: warnings, NetworkOnly: networkOnly}, nil
	})
}

// locked runs a mutating method: it checks the caller, builds the engine,
// refuses a broken manifest, takes the store lock without waiting (Busy when
// sysextctl, the daemon's check or another call holds it), undoes an
// interrupted step, runs fn and replies.
func (s *Server) locked(ctx context.Context, c *varlink.Call, more bool, fn func(context.Context, *Session) (any, error)) error {
	return s.lockedRaw(ctx, c, more, true, fn)
}

func (s *Server) lockedRaw(ctx context.Context, c *varlink.Call, more, prepare bool, fn func(context.Context, *Session) (any, error)) error {
	p, _ := PeerFrom(ctx)
	if ok, reason := p.mayChange(s.AdminGroup()); !ok {
		return c.ReplyError(ctx, ErrPermissionDenied, map[string]string{"reason": reason})
	}
	var st *stream
	var onProgress func(string, int64, int64)
	if more {
		st = newStream(ctx, c)
		defer st.close()
		onProgress = st.bytes
	}
	sess, err := s.Open(ctx, onProgress)
	if err != nil {
		return fail(ctx, c, err)
	}
	defer sess.Close()
	if sess.ManifestErr != nil {
		return fail(ctx, c, fmt.Errorf("%w\nrefusing to change anything until the manifest is fixed", sess.ManifestErr))
	}
	out, err := func() (any, error) {
		release, err := store.Store{Root: s.Root}.Lock(ctx, false, nil)
		if err != nil {
			return nil, err
		}
		defer release()
		if prepare { // what sysextctl runs under the lock too (engine.Start)
			err := sess.Engine.Start(ctx, engine.StartOptions{OnRecovered: func(rec engine.Recovery, err error) {
				if err == nil && rec.Undone != nil {
					s.Log.Warn(fmt.Sprintf("undid the interrupted %s of %s", rec.Undone.Op, rec.Undone.Name), "extension", rec.Undone.Name)
				}
			}})
			if err != nil {
				return nil, err
			}
		}
		if st != nil {
			sess.Engine.Observer = st
		}
		out, err := fn(ctx, sess)
		s.lists.invalidate()
		if s.Changed != nil {
			s.Changed(ctx, sess)
		}
		return out, err
	}()
	if st != nil {
		st.close()
	}
	if err != nil {
		return fail(ctx, c, err)
	}
	return c.Reply(ctx, out)
}

// Progress is one streamed reply of a mutating call.
type Progress struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
	Done  int64  `json:"done,omitempty"`
	Total int64  `json:"total,omitempty"`
}

// stream is the engine.Observer of a call made with more. The engine never
// waits for the caller: replies queue in a buffer, written by their own
// goroutine, and a download's byte counts are dropped while it is full.
type stream struct {
	ch   chan Progress
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	name string // the extension whose step runs now
}

func newStream(ctx context.Context, c *varlink.Call) *stream {
	st := &stream{ch: make(chan Progress, 64), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		c.Continues = true
		failed := false
		for p := range st.ch {
			if !failed && c.Reply(ctx, struct {
				Progress Progress `json:"progress"`
			}{p}) != nil {
				failed = true // keep draining: the step goes on
			}
		}
		c.Continues = false
	}()
	return st
}

func (st *stream) Phase(name string, p engine.Phase) {
	st.mu.Lock()
	st.name = name
	st.mu.Unlock()
	select {
	case st.ch <- Progress{Name: name, Phase: string(p)}:
	default:
	}
}

func (st *stream) Progress(name string, done, total int64) {
	select {
	case st.ch <- Progress{Name: name, Phase: string(engine.PhaseDownload), Done: done, Total: total}:
	default:
	}
}

// bytes is fetch's OnProgress: the asset is the image of the step that
// runs now.
func (st *stream) bytes(_ string, done, total int64) {
	st.mu.Lock()
	name := st.name
	st.mu.Unlock()
	st.Progress(name, done, total)
}

// close ends the stream and waits for its writer, so that the final reply
// follows every progress reply.
func (st *stream) close() {
	st.once.Do(func() { close(st.ch) })
	<-st.done
}
