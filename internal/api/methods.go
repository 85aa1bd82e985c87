package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/varlink/go/varlink"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/status"
	"github.com/spamtagger/sysextd/internal/store"
	"github.com/spamtagger/sysextd/internal/trust"
)

// HistoryByAPI marks the history entries of changes made through the API.
const HistoryByAPI = "api"

type method func(s *Server, ctx context.Context, c *varlink.Call) error

var methods = map[string]method{
	"List":     (*Server).list,
	"Explain":  (*Server).explain,
	"Status":   (*Server).status,
	"History":  (*Server).history,
	"Keys":     (*Server).keys,
	"Install":  verb(engine.VerbInstall, true),
	"Remove":   verb(engine.VerbRemove, true),
	"Update":   verb(engine.VerbUpdate, false),
	"Auto":     verb(engine.VerbAuto, false),
	"Pin":      (*Server).pin,
	"Rollback": (*Server).rollback,
	"Hold":     (*Server).hold,
	"Unhold":   (*Server).unhold,
	"Unpin":    (*Server).unpin,
	"Recover":  (*Server).recover,
	"Watch":    (*Server).watch,
}

// fail replies with the typed error err stands for: an unknown name is
// NoSuchExtension, the lock held Busy, the network NetworkError, anything
// else Refused with err's text as the reason.
func fail(ctx context.Context, c *varlink.Call, err error) error {
	var unknown *engine.UnknownError
	_, rate := source.IsRateLimit(err)
	switch {
	case errors.As(err, &unknown):
		return c.ReplyError(ctx, ErrNoSuchExtension, map[string]string{"name": joinNames(unknown.Names)})
	case errors.Is(err, store.ErrLocked):
		return c.ReplyError(ctx, ErrBusy, map[string]string{"reason": err.Error()})
	case rate || source.IsNetwork(err):
		return c.ReplyError(ctx, ErrNetwork, map[string]string{"reason": err.Error()})
	}
	return c.ReplyError(ctx, ErrRefused, map[string]string{"reason": err.Error()})
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

// read opens a session for a read-only method.
func (s *Server) read(ctx context.Context, c *varlink.Call, fn func(*Session) (any, error)) error {
	sess, err := s.Open(ctx, nil)
	if err != nil {
		return fail(ctx, c, err)
	}
	defer sess.Close()
	out, err := fn(sess)
	if err != nil {
		return fail(ctx, c, err)
	}
	return c.Reply(ctx, out)
}

func (s *Server) list(ctx context.Context, c *varlink.Call) error {
	var p struct {
		Refresh bool `json:"refresh"`
	}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	var key string
	if !p.Refresh {
		key = s.lists.fingerprint(s.Root, s.Hub.published.Load())
		if r, ok := s.lists.get(key, time.Now()); ok {
			return c.Reply(ctx, r)
		}
	}
	return s.read(ctx, c, func(sess *Session) (any, error) {
		opts := engine.ListOptions{Offline: !p.Refresh}
		if p.Refresh {
			opts.MaxAge = -1
		}
		items, _, err := sess.Engine.ListWith(ctx, opts)
		if items == nil {
			items = []engine.Item{}
		}
		if err != nil {
			return nil, err
		}
		reply, err := json.Marshal(struct {
			Extensions []engine.Item `json:"extensions"`
		}{items})
		if err == nil && !p.Refresh {
			s.lists.put(key, time.Now(), reply)
		}
		return json.RawMessage(reply), err
	})
}

func (s *Server) explain(ctx context.Context, c *varlink.Call) error {
	var p struct {
		Name string `json:"name"`
	}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	if p.Name == "" {
		return c.ReplyInvalidParameter(ctx, "name")
	}
	return s.read(ctx, c, func(sess *Session) (any, error) {
		ex, err := Explain(ctx, sess.Engine, p.Name)
		return struct {
			Explanation *Explanation `json:"explanation"`
		}{ex}, err
	})
}

func (s *Server) status(ctx context.Context, c *varlink.Call) error {
	var p struct {
		Refresh bool `json:"refresh"`
	}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	return s.read(ctx, c, func(sess *Session) (any, error) {
		st, err := s.Status(ctx, sess, p.Refresh)
		if err != nil {
			return nil, err
		}
		var failures []engine.LookupFailure
		if st != nil {
			failures = engine.NetworkFailures(st.Extensions)
		}
		return struct {
			Status         *status.Report         `json:"status"`
			LookupFailures []engine.LookupFailure `json:"lookupFailures,omitempty"`
		}{st, failures}, nil
	})
}

func (s *Server) history(ctx context.Context, c *varlink.Call) error {
	var p struct {
		Name  string `json:"name"`
		Limit int    `json:"limit"`
	}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	if p.Limit < 0 {
		return c.ReplyInvalidParameter(ctx, "limit")
	}
	entries, warnings, err := store.Store{Root: s.Root}.ReadHistory(p.Name)
	for _, w := range warnings {
		s.Log.Warn("reading history: " + w)
	}
	if err != nil {
		return fail(ctx, c, err)
	}
	if p.Limit > 0 && len(entries) > p.Limit {
		entries = entries[len(entries)-p.Limit:]
	}
	if entries == nil {
		entries = []store.HistoryEntry{}
	}
	return c.Reply(ctx, struct {
		Entries []store.HistoryEntry `json:"entries"`
	}{entries})
}

func (s *Server) keys(ctx context.Context, c *varlink.Call) error {
	var p struct{}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	kr, errs := trust.LoadKeyring(s.Root)
	out := struct {
		Keys   []*trust.Key `json:"keys"`
		Errors []string     `json:"errors"`
	}{kr.Keys, []string{}}
	if out.Keys == nil {
		out.Keys = []*trust.Key{}
	}
	for _, err := range errs {
		out.Errors = append(out.Errors, err.Error())
	}
	return c.Reply(ctx, out)
}

// Outcome is a mutating method's result: `sysextctl --json`'s object, and
// whether every failure was the network (for sysextctl's exit code 4).
type Outcome struct {
	Verb        string          `json:"verb"`
	Results     []engine.Result `json:"results"`
	Warnings    []string        `json:"warnings"`
	NetworkOnly bool            `json:"networkOnly,omitempty"`
}

// verb is Install, Remove, Update and Auto: plan the verb for the named
// extensions and apply it.
func verb(v string, needNames bool) method {
	return func(s *Server, ctx context.Context, c *varlink.Call) error {
		var p struct {
			Names         []string `json:"names"`
			DryRun        bool     `json:"dryRun"`
			IgnorePhasing bool     `json:"ignorePhasing"`
		}
		if ok, err := params(ctx, c, &p); !ok {
			return err
		}
		if (needNames && len(p.Names) == 0) || (v == engine.VerbAuto && len(p.Names) > 0) || slices.Contains(p.Names, "") {
			return c.ReplyInvalidParameter(ctx, "names")
		}
		if p.IgnorePhasing && v != engine.VerbInstall && v != engine.VerbUpdate {
			return c.ReplyInvalidParameter(ctx, "ignorePhasing")
		}
		return s.change(ctx, c, p.DryRun, func(ctx context.Context, e *engine.Engine) (*engine.Plan, error) {
			e.IgnorePhasing = p.IgnorePhasing
			return e.MakePlan(ctx, v, p.Names)
		})
	}
}

func (s *Server) pin(ctx context.Context, c *varlink.Call) error {
	var p struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	if p.Name == "" || p.Version == "" {
		return c.ReplyInvalidParameter(ctx, map[bool]string{true: "name", false: "version"}[p.Name == ""])
	}
	return s.change(ctx, c, false, func(ctx context.Context, e *engine.Engine) (*engine.Plan, error) {
		if err := installed(e, p.Name); err != nil {
			return nil, err
		}
		if err := e.SetPin(p.Name, p.Version); err != nil {
			return nil, err
		}
		plan, err := e.MakePlan(ctx, engine.VerbUpdate, []string{p.Name})
		if plan != nil {
			plan.Verb = "pin"
		}
		return plan, err
	})
}

func (s *Server) rollback(ctx context.Context, c *varlink.Call) error {
	var p struct {
		Name string `json:"name"`
	}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	if p.Name == "" {
		return c.ReplyInvalidParameter(ctx, "name")
	}
	return s.change(ctx, c, false, func(ctx context.Context, e *engine.Engine) (*engine.Plan, error) {
		return e.RollbackPlan(ctx, p.Name)
	})
}

// installed is NoSuchExtension unless name has a state record.
func installed(e *engine.Engine, name string) error {
	st, err := store.Store{Root: e.Root}.LoadState()
	if err != nil {
		return err
	}
	if st.Extensions[name] == nil {
		return &engine.UnknownError{Names: []string{name}}
	}
	return nil
}

// record is Hold, Unhold and Unpin: one change to a state record.
func (s *Server) record(ctx context.Context, c *varlink.Call, fn func(e *engine.Engine, name, reason string) (string, error)) error {
	var p struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	if p.Name == "" {
		return c.ReplyInvalidParameter(ctx, "name")
	}
	var msg string
	return s.locked(ctx, c, false, func(ctx context.Context, sess *Session) (any, error) {
		if err := installed(sess.Engine, p.Name); err != nil {
			return nil, err
		}
		var err error
		msg, err = fn(sess.Engine, p.Name, p.Reason)
		return struct {
			Message string `json:"message"`
		}{msg}, err
	})
}

func (s *Server) hold(ctx context.Context, c *varlink.Call) error {
	return s.record(ctx, c, func(e *engine.Engine, name, reason string) (string, error) {
		if reason == "" {
			reason = "held by the operator"
		}
		return name + " held", e.SetHold(name, true, reason)
	})
}

func (s *Server) unhold(ctx context.Context, c *varlink.Call) error {
	return s.record(ctx, c, func(e *engine.Engine, name, reason string) (string, error) {
		if reason != "" {
			return "", fmt.Errorf("unhold takes no reason")
		}
		return name + " no longer held", e.SetHold(name, false, "")
	})
}

func (s *Server) unpin(ctx context.Context, c *varlink.Call) error {
	return s.record(ctx, c, func(e *engine.Engine, name, reason string) (string, error) {
		if reason != "" {
			return "", fmt.Errorf("unpin takes no reason")
		}
		return name + " no longer pinned", e.SetPin(name, "")
	})
}

func (s *Server) recover(ctx context.Context, c *varlink.Call) error {
	var p struct{}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	return s.lockedRaw(ctx, c, false, false, func(ctx context.Context, sess *Session) (any, error) {
		rec, err := sess.Engine.Recover(ctx)
		return struct {
			Recovery engine.Recovery `json:"recovery"`
		}{rec}, err
	})
}
