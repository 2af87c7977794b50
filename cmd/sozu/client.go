package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// Client is one connection to the supervisor's command socket. It writes
// Request frames and reads Response frames (docs/protocol.md §1.1). Responses
// carry no id: they belong to requests by order, so a Client serves one
// request at a time and is not safe for concurrent use. After Do returns the
// connection may carry the next request; a Client whose Do failed with a
// *ConnError should be closed.
//
// Later verbs reuse it: `sozu top` and event streams call Send once and then
// Recv in a loop; one-shot verbs call Do.
type Client struct {
	conn net.Conn
	path string // socket path, for messages; "" when built on a conn
	max  int
	r    *frame.Reader
}

// Dial connects to the command socket at path. maxFrame bounds the frames
// read and written (config max_command_buffer_size); ≤ 0 means the default.
// A failure is a *ConnError with Op "connect" wrapping the syscall error, so
// errors.Is(err, fs.ErrPermission) and friends work.
//
// Before anything is sent, the process listening on the socket must run as
// a uid the CLI trusts (see checkServer): otherwise Dial closes the
// connection and fails with a *ConnError wrapping a *ServerUIDError.
func Dial(path string, maxFrame int) (*Client, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		var se *os.SyscallError
		if errors.As(err, &se) {
			err = se.Err
		}
		return nil, &ConnError{Op: "connect", Path: path, Err: err}
	}
	if err := checkServer(conn, path); err != nil {
		conn.Close()
		return nil, &ConnError{Op: "connect", Path: path, Err: err}
	}
	c := NewClient(conn, maxFrame)
	c.path = path
	return c, nil
}

// NewClient wraps an established connection (tests use net.Pipe). The
// Client owns conn from now on.
func NewClient(conn net.Conn, maxFrame int) *Client {
	if maxFrame <= 0 {
		maxFrame = defaultMaxFrame
	}
	return &Client{conn: conn, max: maxFrame, r: newFrameReader(conn, maxFrame)}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// SetDeadline bounds the following Send and Recv calls; zero = none.
func (c *Client) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Send writes one request frame.
func (c *Client) Send(req *command.Request) error {
	if err := writeFrame(c.conn, req, c.max); err != nil {
		return c.connErr("send", err)
	}
	return nil
}

// Recv reads the next response frame, whatever its status.
func (c *Client) Recv() (*command.Response, error) {
	resp := &command.Response{}
	if err := c.r.ReadMessage(resp); err != nil {
		return nil, c.connErr("receive", err)
	}
	return resp, nil
}

// Do sends req and reads responses until the terminal one (OK or FAILURE),
// which it returns whatever its status. Each PROCESSING response before it
// is passed to progress (which may be nil). ctx bounds the whole exchange:
// when it is done, the pending read or write is interrupted and Do returns
// a *ConnError wrapping ctx.Err() (context.DeadlineExceeded for -t).
func (c *Client) Do(ctx context.Context, req *command.Request, progress func(*command.Response)) (*command.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, &ConnError{Op: "send", Path: c.path, Err: err}
	}
	dl, _ := ctx.Deadline()
	if err := c.conn.SetDeadline(dl); err != nil {
		return nil, c.connErr("send", err)
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		// A deadline in the past wakes the blocked read or write at once.
		_ = c.conn.SetDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted // the deadline was moved; let that finish first
		}
	}()
	wrap := func(err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			var ce *ConnError
			if errors.As(err, &ce) {
				ce.Err = ctxErr
				return ce
			}
			return &ConnError{Op: "receive", Path: c.path, Err: ctxErr}
		}
		return err
	}
	if err := c.Send(req); err != nil {
		return nil, wrap(err)
	}
	for {
		resp, err := c.Recv()
		if err != nil {
			return nil, wrap(err)
		}
		if resp.GetStatus() != command.ResponseStatus_PROCESSING {
			return resp, nil
		}
		if progress != nil {
			progress(resp)
		}
	}
}

func (c *Client) connErr(op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = context.DeadlineExceeded
	}
	return &ConnError{Op: op, Path: c.path, Err: err}
}

// ConnError is a failure to talk to the supervisor: connecting, sending,
// receiving (closed connection, deadline, undecodable frame).
type ConnError struct {
	Op   string // "connect", "send" or "receive"
	Path string // socket path; may be ""
	Err  error
}

func (e *ConnError) Error() string {
	where := "supervisor"
	if e.Path != "" {
		where += " at " + e.Path
	}
	switch {
	case e.Op == "connect":
		return fmt.Sprintf("supervisor unreachable at %s: %v", e.Path, e.Err)
	case errors.Is(e.Err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from %s in time (see -t)", where)
	case errors.Is(e.Err, context.Canceled):
		return "interrupted"
	case e.lost():
		return fmt.Sprintf("%s closed the connection before its final answer", where)
	default:
		return fmt.Sprintf("%s: %s: %v", where, e.Op, e.Err)
	}
}

func (e *ConnError) Unwrap() error { return e.Err }

// lost reports whether the connection broke: closed by the peer, reset.
func (e *ConnError) lost() bool {
	return errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF) || errors.Is(e.Err, net.ErrClosed) ||
		errors.Is(e.Err, syscall.ECONNRESET) || errors.Is(e.Err, syscall.EPIPE)
}
