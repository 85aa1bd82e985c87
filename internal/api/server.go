// Package api is sysextd's local Varlink interface io.spamtagger.Sysext
// (docs/api.md): a thin adapter that turns each method into one engine call
// under the store lock, typed errors, streamed progress and a Watch of
// every change. The daemon serves it on Socket; cmd/sysextctl talks to it
// through internal/api/client.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/varlink/go/varlink"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/status"
)

// Interface is the Varlink interface name; Socket the in-root path of the
// socket sysextd.socket listens on.
const (
	Interface = "io.spamtagger.Sysext"
	Socket    = "/run/sysextd/" + Interface
)

//go:embed io.spamtagger.Sysext.varlink
var description string

// Description is the interface definition served by GetInterfaceDescription.
func Description() string { return description }

// Errors of the interface.
const (
	ErrNoSuchExtension  = Interface + ".NoSuchExtension"
	ErrPermissionDenied = Interface + ".PermissionDenied"
	ErrRefused          = Interface + ".Refused"
	ErrNetwork          = Interface + ".NetworkError"
	ErrBusy             = Interface + ".Busy"
	ErrExpectedMore     = Interface + ".ExpectedMore"
)

// Limits that keep a caller from costing the daemon more than a bounded
// amount: one message, a stuck reader, a watcher that does not read.
const (
	maxMessage   = 1 << 20
	writeTimeout = 30 * time.Second
	watchBuffer  = 256
	// maxConns bounds the connections served at once; one more is
	// closed at once, and logged.
	maxConns = 128
)

// Session is the engine of one call and what built it.
type Session struct {
	Engine *engine.Engine
	// ManifestErr is a broken manifest: read-only methods answer, mutating
	// ones are Refused.
	ManifestErr error
	Close       func()
}

// Server serves io.spamtagger.Sysext. Every field but Log and Changed is
// required.
type Server struct {
	Root rootfs.Root
	// Open builds the engine for one call from the daemon's configuration.
	// onProgress, when set, hears the bytes of each download.
	Open func(ctx context.Context, onProgress func(asset string, done, total int64)) (*Session, error)
	// AdminGroup is sysextd.toml's admin_group ("": root only), read at
	// each mutating call so that a reload applies.
	AdminGroup func() string
	// Status is the Status method's object (sysextctl status --json).
	Status func(ctx context.Context, s *Session, refresh bool) (*status.Report, error)
	// Changed is called after every mutating call, still under the lock
	// (the metrics textfile).
	Changed func(ctx context.Context, s *Session)
	Hub     *Hub
	Log     *slog.Logger

	// Peer reads a connection's credentials; nil is PeerOf (tests set
	// another to call as another user).
	Peer  func(net.Conn) (Peer, error)
	once  sync.Once
	svc   *varlink.Service
	lists listCache
}

type peerKey struct{}

// PeerFrom returns the caller of the method being served.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.Peer == nil {
			s.Peer = PeerOf
		}
		if s.Hub == nil {
			s.Hub = NewHub()
		}
		svc, err := varlink.NewService("SpamTagger", "sysextd", "1", "https://github.com/SpamTagger/sysextd")
		if err == nil {
			err = svc.RegisterInterface(dispatcher{s})
		}
		if err != nil {
			panic("registering " + Interface + ": " + err.Error()) // a programming error
		}
		s.svc = svc
	})
}

// Serve accepts connections on l until ctx ends, serving each on its own
// goroutine, at most maxConns at once. It closes l when it returns.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.init()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	slots := make(chan struct{}, maxConns)
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accepting on %s: %w", l.Addr(), err)
		}
		select {
		case slots <- struct{}{}:
		default:
			s.Log.Warn(fmt.Sprintf("refusing an API connection: %d are open already", maxConns))
			c.Close()
			continue
		}
		go func() {
			defer func() { <-slots }()
			s.ServeConn(ctx, c)
		}()
	}
}

// ServeConn serves one connection until the peer closes it or ctx ends,
// then closes it. The peer's credentials are read first; a connection
// whose credentials cannot be read is closed unserved.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	s.init()
	p, err := s.Peer(c)
	if err != nil {
		s.Log.Warn("refusing an API connection: "+err.Error(), "err", err)
		c.Close()
		return
	}
	s.svc.ServeConn(context.WithValue(ctx, peerKey{}, p), &boundedConn{Conn: c})
}

// boundedConn refuses a message longer than maxMessage (the library
// buffers until the NUL that ends one, without a limit) and bounds every
// write, so that a caller that stops reading costs one goroutine, never the
// lock. It hides *net.UnixConn, so no file descriptors are accepted.
type boundedConn struct {
	net.Conn
	pending int // bytes read since the last NUL
}

func (b *boundedConn) Read(p []byte) (int, error) {
	n, err := b.Conn.Read(p)
	for _, c := range p[:n] {
		if c == 0 {
			b.pending = 0
		} else if b.pending++; b.pending > maxMessage {
			return 0, fmt.Errorf("a message longer than %d bytes", maxMessage)
		}
	}
	return n, err
}

func (b *boundedConn) Write(p []byte) (int, error) {
	if err := b.Conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return 0, err
	}
	return b.Conn.Write(p)
}

// dispatcher is what varlink.Service calls; it is the Server's method table.
type dispatcher struct{ s *Server }

func (d dispatcher) VarlinkGetName() string        { return Interface }
func (d dispatcher) VarlinkGetDescription() string { return description }

// VarlinkDispatch runs one method. A panic in a method is logged and ends
// the connection, never the daemon; the lock is released by its defer.
func (d dispatcher) VarlinkDispatch(ctx context.Context, c varlink.Call, method string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			d.s.Log.Error(fmt.Sprintf("API method %s panicked: %v", method, r), "stack", string(debug.Stack()))
			err = fmt.Errorf("method %s panicked", method)
		}
	}()
	m, ok := methods[method]
	if !ok {
		return c.ReplyMethodNotFound(ctx, Interface+"."+method)
	}
	return m(d.s, ctx, &c)
}

// params decodes a call's parameters into p (a pointer to a struct with
// json tags), refusing unknown ones. A parameter of the wrong type or an
// unknown name is InvalidParameter naming it.
func params(ctx context.Context, c *varlink.Call, p any) (ok bool, err error) {
	if c.In.Parameters == nil || len(*c.In.Parameters) == 0 {
		return true, nil
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(*c.In.Parameters, &raw) != nil {
		return false, c.ReplyInvalidParameter(ctx, "parameters")
	}
	known := map[string]bool{}
	t := reflect.TypeOf(p).Elem()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	for k := range raw {
		if !known[k] {
			return false, c.ReplyInvalidParameter(ctx, k)
		}
	}
	if derr := json.Unmarshal(*c.In.Parameters, p); derr != nil {
		name := "parameters"
		var te *json.UnmarshalTypeError
		if errors.As(derr, &te) && te.Field != "" {
			name = te.Field
		}
		return false, c.ReplyInvalidParameter(ctx, name)
	}
	return true, nil
}
