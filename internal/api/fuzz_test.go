package api_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/spamtagger/sysextd/internal/api"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/status"
)

// FuzzMessage sends one arbitrary message to the server, as nobody and as
// root, and checks that the server answers or hangs up without panicking,
// and still serves the next connection. The engine is not built (Open
// fails): what is fuzzed is the framing, the dispatch and the parameters.
func FuzzMessage(f *testing.F) {
	for _, seed := range []string{
		`{"method":"io.spamtagger.Sysext.Install","parameters":{"names":["hello"]},"more":true}`,
		`{"method":"io.spamtagger.Sysext.Hold","parameters":{"name":"x","reason":7}}`,
		`{"method":"io.spamtagger.Sysext.History","parameters":{"limit":-1}}`,
		`{"method":"io.spamtagger.Sysext.Watch","oneway":true}`,
		`{"method":"io.spamtagger.Sysext.Pin","parameters":[1,2]}`,
		`{"method":"org.varlink.service.GetInterfaceDescription","parameters":{"interface":"io.spamtagger.Sysext"}}`,
		`{"method":".","parameters":null}`,
		`{"method":"io.spamtagger.Sysext.Nope","upgrade":true}`,
		`not json`,
	} {
		f.Add([]byte(seed), false)
	}
	root := rootfs.New(f.TempDir())
	f.Fuzz(func(t *testing.T, msg []byte, asRoot bool) {
		msg = bytes.ReplaceAll(msg, []byte{0}, nil)
		peer := api.Peer{UID: 65534, GID: 65534}
		if asRoot {
			peer = api.Peer{}
		}
		srv := &api.Server{
			Root: root,
			Open: func(context.Context, func(string, int64, int64)) (*api.Session, error) {
				return nil, errors.New("no engine in the fuzzer")
			},
			AdminGroup: func() string { return "" },
			Status:     func(context.Context, *api.Session, bool) (*status.Report, error) { return nil, nil },
			Peer:       func(net.Conn) (api.Peer, error) { return peer, nil },
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, b := socketpair(t)
		defer a.Close()
		done := make(chan struct{})
		go func() { srv.ServeConn(ctx, b); close(done) }()
		a.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := a.Write(append(msg, 0)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		// A reply, EOF when the server hung up, or nothing (a oneway call).
		a.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		a.Read(buf)
		a.Close()
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the connection is still served after the client left: %q", msg)
		}
		// The server still serves.
		c1, c2 := socketpair(t)
		defer c1.Close()
		go srv.ServeConn(context.Background(), c2)
		c1.SetDeadline(time.Now().Add(5 * time.Second))
		c1.Write([]byte(`{"method":"io.spamtagger.Sysext.Keys"}` + "\x00"))
		n, err := c1.Read(buf)
		if err != nil || !bytes.Contains(buf[:n], []byte(`"keys"`)) {
			t.Fatalf("after %q the server no longer answers Keys: %q, %v", msg, buf[:n], err)
		}
	})
}
