package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/varlink/go/varlink"

	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/store"
)

// Kinds of Event.
const (
	EventSubscribed     = "subscribed" // the first reply of Watch: from here on nothing is missed
	EventInstalled      = "installed"
	EventUpdated        = "updated"
	EventRemoved        = "removed"
	EventRolledBack     = "rolled-back" // a rollback, or a failed step undone
	EventFailed         = "failed"
	EventHeld           = "held"
	EventUnheld         = "unheld"
	EventRebootRequired = "reboot-required"
	EventCheckFinished  = "check-finished"
)

// Event is one change, whatever made it.
type Event struct {
	Kind  string    `json:"kind"`
	Time  time.Time `json:"time"`
	Name  string    `json:"name,omitempty"`
	Verb  string    `json:"verb,omitempty"`
	By    string    `json:"by,omitempty"`
	From  string    `json:"from,omitempty"`
	To    string    `json:"to,omitempty"`
	OK    *bool     `json:"ok,omitempty"`
	Error string    `json:"error,omitempty"`
}

// EventOf is the event a history entry stands for.
func EventOf(h store.HistoryEntry) Event {
	ok := h.Result == store.HistoryOK
	ev := Event{Time: h.Time, Name: h.Name, Verb: h.Verb, By: h.By, From: h.From, To: h.To, OK: &ok, Error: h.Error}
	switch {
	case h.Result == store.HistoryRolledBack, ok && h.Verb == "rollback":
		ev.Kind = EventRolledBack
	case !ok:
		ev.Kind = EventFailed
	case h.Op == "install":
		ev.Kind = EventInstalled
	case h.Op == "update":
		ev.Kind = EventUpdated
	case h.Op == "remove":
		ev.Kind = EventRemoved
	case h.Op == "hold":
		ev.Kind = EventHeld
	case h.Op == "unhold":
		ev.Kind = EventUnheld
	default:
		ev.Kind = h.Op
	}
	return ev
}

// Hub hands every event to every Watch. A subscriber that falls
// watchBuffer events behind is dropped (its Watch ends), so that no
// watcher can slow the daemon.
type Hub struct {
	mu        sync.Mutex
	subs      map[chan Event]bool
	published atomic.Uint64 // events so far: a List answer older than one is stale
}

// NewHub returns a Hub without subscribers.
func NewHub() *Hub { return &Hub{subs: map[chan Event]bool{}} }

// Publish hands ev to every subscriber without waiting.
func (h *Hub) Publish(ev Event) {
	h.published.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// Subscribe returns a channel of the events from now on, closed when the
// subscriber fell behind, and the function that ends the subscription.
func (h *Hub) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, watchBuffer)
	h.mu.Lock()
	h.subs[ch] = true
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.subs[ch] {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// TailHistory publishes an event for every line appended to the history
// file, whoever appends it (sysextctl, the API, the daemon's timer), and a
// reboot-required event when an extension newly asks for one. It returns
// when ctx ends. inotify blocks in the kernel: no CPU while nothing
// changes. after is called with the entries of each batch (the metrics).
func (h *Hub) TailHistory(ctx context.Context, root rootfs.Root, log *slog.Logger, after func([]store.HistoryEntry)) error {
	dir := root.Path(rootfs.StateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return err
	}
	path := root.Path(store.HistoryFile)
	t := &tail{path: path}
	if fi, err := os.Stat(path); err == nil {
		t.off = fi.Size()
	}
	reboot := store.RebootPending(root)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("watching the history: "+err.Error(), "err", err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != path || !ev.Has(fsnotify.Write|fsnotify.Create) {
				continue
			}
			entries := t.read(log)
			for _, e := range entries {
				h.Publish(EventOf(e))
			}
			now := store.RebootPending(root)
			for name := range now {
				if !reboot[name] {
					h.Publish(Event{Kind: EventRebootRequired, Time: time.Now().UTC(), Name: name})
				}
			}
			reboot = now
			if after != nil && len(entries) > 0 {
				after(entries)
			}
		}
	}
}

// tail reads the complete lines appended to a file since the last read.
type tail struct {
	path    string
	off     int64
	partial []byte
}

func (t *tail) read(log *slog.Logger) []store.HistoryEntry {
	f, err := os.Open(t.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < t.off {
		t.off, t.partial = 0, nil // replaced: read it anew
	}
	data, err := io.ReadAll(io.NewSectionReader(f, t.off, 1<<40))
	if err != nil {
		log.Warn("reading the history: "+err.Error(), "err", err)
		return nil
	}
	t.off += int64(len(data))
	data = append(t.partial, data...)
	var out []store.HistoryEntry
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := data[:i]
		data = data[i+1:]
		var e store.HistoryEntry
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := json.Unmarshal(line, &e); err != nil {
			log.Warn("skipping a history line: "+err.Error(), "err", err)
			continue
		}
		out = append(out, e)
	}
	t.partial = slices.Clone(data)
	return out
}

func (s *Server) watch(ctx context.Context, c *varlink.Call) error {
	var p struct{}
	if ok, err := params(ctx, c, &p); !ok {
		return err
	}
	if !c.WantsMore() {
		return c.ReplyError(ctx, ErrExpectedMore, nil)
	}
	ch, cancel := s.Hub.Subscribe()
	defer cancel()
	c.Continues = true
	reply := func(ev Event) error {
		return c.Reply(ctx, struct {
			Event Event `json:"event"`
		}{ev})
	}
	if err := reply(Event{Kind: EventSubscribed, Time: time.Now().UTC()}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-ch:
			if !ok {
				return io.ErrShortWrite // fell behind: end the connection
			}
			if err := reply(ev); err != nil {
				return err
			}
		}
	}
}
