// Package client is sysextctl's side of io.spamtagger.Sysext: it calls the
// daemon's methods and returns their typed errors as *Error.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/varlink/go/varlink"

	"github.com/spamtagger/sysextd/internal/api"
)

// Client is one connection to the daemon.
type Client struct{ conn *varlink.Connection }

// Dial connects to the socket at path. A socket file nobody listens on
// (sysextd.socket stopped, a stale file) is an error like a missing one.
func Dial(ctx context.Context, path string) (*Client, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	c, err := varlink.NewConnection(ctx, "unix:"+path)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", path, err)
	}
	return &Client{conn: c}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Error is an error reply: Name is the Varlink error
// (api.ErrBusy, ...), Reason its reason or the name it is about.
type Error struct {
	Name   string
	Reason string
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return e.Name
	}
	return e.Reason
}

// Is reports whether err is the error reply name.
func Is(err error, name string) bool {
	var e *Error
	return errors.As(err, &e) && e.Name == name
}

// Call calls method with in and decodes its one reply into out.
func (c *Client) Call(ctx context.Context, method string, in, out any) error {
	return c.Stream(ctx, method, in, nil, out)
}

// Stream calls method with more when progress is set: every reply but the
// last goes to progress; the last is decoded into out.
func (c *Client) Stream(ctx context.Context, method string, in any, progress func(api.Progress), out any) error {
	var flags uint64
	if progress != nil {
		flags = varlink.More
	}
	if in == nil {
		in = struct{}{}
	}
	recv, err := c.conn.Send(ctx, api.Interface+"."+method, in, flags)
	if err != nil {
		return fmt.Errorf("calling %s: %w", method, err)
	}
	for {
		var raw json.RawMessage
		fl, err := recv(ctx, &raw)
		if err != nil {
			return replyError(method, err)
		}
		if fl&varlink.Continues == 0 {
			if out != nil && len(raw) > 0 {
				if err := json.Unmarshal(raw, out); err != nil {
					return fmt.Errorf("decoding the reply of %s: %w", method, err)
				}
			}
			return nil
		}
		var p struct {
			Progress *api.Progress `json:"progress"`
		}
		if json.Unmarshal(raw, &p) == nil && p.Progress != nil && progress != nil {
			progress(*p.Progress)
		}
	}
}

// replyError turns a Varlink error reply into *Error.
func replyError(method string, err error) error {
	var ve *varlink.Error
	if errors.As(err, &ve) {
		e := &Error{Name: ve.Name}
		if raw, ok := ve.Parameters.(*json.RawMessage); ok && raw != nil {
			var p struct {
				Reason string `json:"reason"`
				Name   string `json:"name"`
			}
			if json.Unmarshal(*raw, &p) == nil {
				e.Reason = p.Reason
				if e.Reason == "" && p.Name != "" {
					e.Reason = p.Name
				}
			}
		}
		return e
	}
	var ip *varlink.InvalidParameter
	if errors.As(err, &ip) {
		return &Error{Name: "org.varlink.service.InvalidParameter", Reason: "invalid parameter " + ip.Parameter}
	}
	return fmt.Errorf("calling %s: %w", method, err)
}
