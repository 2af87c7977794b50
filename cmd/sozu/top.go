package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sozu-go/sozu/cmd/sozu/top"
	"github.com/sozu-go/sozu/proto/command"
)

// runTop runs `sozu top` (cmd/sozu/top) on the terminal. It checks first
// that the command socket answers, so that an unreachable or forbidden
// socket is reported (exit 69 or 77) before the terminal is taken over.
// The view only reads: every query it sends needs the read-only role.
func runTop(a *app, inv *invocation) int {
	if inv.json {
		fmt.Fprint(a.stderr, usageErrorText(&usageError{node: inv.node, msg: "--json does not apply to the terminal view (for JSON: sozu events --json, sozu -j <query verb>)"}))
		return exitUsage
	}
	if !a.colorOutTerminal() {
		fmt.Fprint(a.stderr, usageErrorText(&usageError{node: inv.node, msg: "needs a terminal on stdin and stdout (for scripts: sozu events, sozu -j …)"}))
		return exitUsage
	}
	path := a.configPath(inv)
	cfg, err := a.loadConfig(path)
	if err != nil {
		return a.fail(inv, &configError{path: path, err: err})
	}
	dial := func() (*Client, error) { return a.dial(cfg.socket, cfg.maxFrame) }
	c, err := dial()
	if err != nil {
		return a.fail(inv, err)
	}
	ctx, cancel := deadline(inv, cfg.timeout)
	resp, err := c.Do(ctx, &command.Request{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}}, nil)
	cancel()
	c.Close()
	if err != nil {
		return a.fail(inv, err)
	}
	if resp.GetStatus() != command.ResponseStatus_OK {
		return a.answer(inv, resp)
	}
	src := top.Source{
		// Each query of the view is bounded by -t (or ctl_command_timeout)
		// when given, else by the view's own 2 s.
		Timeout: cfg.timeout,
		Dial: func() (top.Conn, error) {
			c, err := dial()
			if err != nil {
				return nil, err
			}
			return topConn{c}, nil
		},
		Subscribe: func() (top.Stream, error) {
			c, err := dial()
			if err != nil {
				return nil, err
			}
			if err := c.Send(&command.Request{RequestType: &command.Request_SubscribeEvents{SubscribeEvents: &command.SubscribeEvents{}}}); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
	if inv.timeoutSet {
		src.Timeout = inv.timeout
	}
	if err := top.Run(src, os.Stdin, os.Stdout); err != nil {
		return a.fail(inv, errors.New("the terminal view failed: "+err.Error()))
	}
	return exitOK
}

// topConn is a Client answering one request at a time, for top's poller.
type topConn struct{ c *Client }

func (t topConn) Do(ctx context.Context, req *command.Request) (*command.Response, error) {
	return t.c.Do(ctx, req, nil)
}

func (t topConn) Close() error { return t.c.Close() }

// colorOutTerminal reports whether stdin and stdout are terminals (a.isTTY
// when tests set it).
func (a *app) colorOutTerminal() bool {
	if a.isTTY != nil {
		return a.isTTY()
	}
	return isCharDevice(os.Stdin) && isCharDevice(os.Stdout)
}

func isCharDevice(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
