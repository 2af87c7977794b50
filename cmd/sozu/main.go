// Command sozu is the single binary of the Go Sōzu: `sozu start` runs the
// proxy, the hidden `sozu worker` is a worker process, and the other verbs
// are the operator CLI speaking to the supervisor's command socket.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

const (
	defaultConfigPath = "/etc/sozu/config.toml"
	defaultTimeout    = 10 * time.Second
)

func main() {
	os.Exit(newApp().run(os.Args[1:]))
}

// app is the CLI's contact with the outside world; tests replace any part.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// colorOut and colorErr: the stream is a terminal and colour is wanted.
	colorOut, colorErr bool
	// loadConfig reads what the client needs from the configuration file.
	loadConfig func(path string) (clientConfig, error)
	// checkConfig loads and validates the whole configuration (config check):
	// its keys not in force and its notes (config.Note), one line each.
	// It returns the warnings of the keys not in force, one line each.
	checkConfig func(path string) (warnings, notes []string, err error)
	// dial connects to the command socket.
	dial func(path string, maxFrame int) (*Client, error)
	// abs makes a path absolute (state files).
	abs func(string) (string, error)
	// readFile reads the files a verb sends the content of (certificates).
	readFile readFileFunc
	// signals, when set, replaces SIGINT/SIGTERM for the verbs that run
	// until interrupted (events, top): done = interrupted.
	signals context.Context
	// isTTY, when set, replaces the check that stdin and stdout are
	// terminals (sozu top).
	isTTY func() bool
	// sleep waits between two answers of a refreshing verb.
	sleep func(time.Duration)
}

func newApp() *app {
	return &app{
		stdout:      os.Stdout,
		stderr:      os.Stderr,
		getenv:      os.Getenv,
		colorOut:    wantColor(os.Stdout, os.Getenv),
		colorErr:    wantColor(os.Stderr, os.Getenv),
		loadConfig:  loadClientConfig,
		checkConfig: checkFullConfig,
		dial:        Dial,
		abs:         filepath.Abs,
		readFile:    os.ReadFile,
		sleep:       time.Sleep,
	}
}

// wantColor: colour only on a terminal, and not with NO_COLOR or TERM=dumb.
func wantColor(f *os.File, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// run executes one command line and returns the exit code.
func (a *app) run(args []string) int {
	inv, err := parseArgs(args)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprint(a.stderr, usageErrorText(ue))
		} else {
			fmt.Fprintf(a.stderr, "sozu: %v\n", err)
		}
		return exitCodeFor(err)
	}
	if inv.help {
		fmt.Fprint(a.stdout, helpText(inv.node))
		return exitOK
	}
	v := inv.verb
	if v.run != nil {
		return v.run(a, inv)
	}
	if v.stream {
		return a.follow(inv)
	}
	return a.request(inv)
}

// configPath is -c, else $SOZU_CONFIG, else the default path.
// connect reads the client keys of the configuration and dials its
// command socket. On failure it reports the error and returns a nil
// client and the exit code.
func (a *app) connect(inv *invocation) (clientConfig, *Client, int) {
	path := a.configPath(inv)
	cfg, err := a.loadConfig(path)
	if err != nil {
		return cfg, nil, a.fail(inv, &configError{path: path, err: err})
	}
	c, err := a.dial(cfg.socket, cfg.maxFrame)
	if err != nil {
		return cfg, nil, a.fail(inv, err)
	}
	return cfg, c, 0
}

func (a *app) configPath(inv *invocation) string {
	if inv.configPath != "" {
		return inv.configPath
	}
	if p := a.getenv("SOZU_CONFIG"); p != "" {
		return p
	}
	return defaultConfigPath
}

// fail prints err on stderr and returns its exit code.
func (a *app) fail(inv *invocation, err error) int {
	prefix := "sozu"
	if inv.verb != nil {
		prefix += " " + inv.verb.path
	}
	var ce *configError
	if errors.As(err, &ce) {
		fmt.Fprintf(a.stderr, "%s: cannot load configuration %s:\n", prefix, ce.path)
		for _, line := range configErrorLines(ce.err) {
			fmt.Fprintf(a.stderr, "  %s\n", line)
		}
	} else {
		fmt.Fprintf(a.stderr, "%s: %v\n", prefix, err)
	}
	return exitCodeFor(err)
}

// deadline is the context for the exchange: -t if given (0 = none), else
// the verb's default: none for the verbs without a deadline, else
// configured (ctl_command_timeout) when not 0, else defaultTimeout.
func deadline(inv *invocation, configured time.Duration) (context.Context, context.CancelFunc) {
	d := defaultTimeout
	switch {
	case inv.timeoutSet:
		d = inv.timeout
	case inv.verb.noDeadline:
		d = 0
	case configured > 0:
		d = configured
	}
	if d == 0 {
		return context.WithCancel(context.Background())
	}
	return context.WithTimeout(context.Background(), d)
}

// request runs a verb answered by the supervisor: read the files the verb
// sends, load the configuration, connect, send, show progress, render the
// terminal answer.
func (a *app) request(inv *invocation) int {
	req := inv.req
	if inv.verb.load != nil {
		var err error
		if req, err = inv.verb.load(req, &inv.values, a.readFile); err != nil {
			return a.fail(inv, err)
		}
	}
	req, err := a.resolvePaths(req)
	if err != nil {
		return a.fail(inv, err)
	}
	cfg, c, code := a.connect(inv)
	if c == nil {
		return code
	}
	defer c.Close()
	every := time.Duration(0)
	if inv.verb.refresh != nil {
		every = inv.verb.refresh(&inv.values)
	}
	for {
		code, done := a.exchange(inv, c, req, cfg.timeout, every > 0)
		if done || every == 0 {
			return code
		}
		a.sleep(every)
	}
}

// exchange sends req on c and renders the answer; with refreshing, the
// screen is cleared first on a terminal and progress is not shown. done
// reports an error that ends a refresh loop (the connection failed).
func (a *app) exchange(inv *invocation, c *Client, req *command.Request, configured time.Duration, refreshing bool) (code int, done bool) {
	ctx, cancel := deadline(inv, configured)
	defer cancel()
	resp, err := c.Do(ctx, req, func(p *command.Response) {
		if !inv.json && !refreshing {
			fmt.Fprint(a.stderr, renderProgress(p))
		}
	})
	if err != nil {
		return a.fail(inv, err), true
	}
	if inv.verb.keep != nil {
		inv.verb.keep(resp)
	}
	if refreshing && !inv.json && a.colorOut {
		fmt.Fprint(a.stdout, "\x1b[H\x1b[2J")
	}
	return a.answer(inv, resp), false
}

// answer prints a terminal response and returns the exit code for it.
func (a *app) answer(inv *invocation, resp *command.Response) int {
	if inv.json {
		doc, err := renderJSON(resp)
		if err != nil {
			return a.fail(inv, fmt.Errorf("cannot render the answer as JSON: %w", err))
		}
		a.stdout.Write(doc)
	} else {
		out, _ := renderText(resp, a.colorOut)
		_, errOut := renderText(resp, a.colorErr) // each stream coloured for itself
		fmt.Fprint(a.stdout, out)
		fmt.Fprint(a.stderr, errOut)
	}
	return exitCodeForResponse(resp)
}

// resolvePaths makes the path of state save/load absolute against the
// CLI's working directory: the supervisor would read it relative to its
// own. It returns a copy; the parsed request stays as typed.
func (a *app) resolvePaths(req *command.Request) (*command.Request, error) {
	switch rt := req.GetRequestType().(type) {
	case *command.Request_SaveState:
		p, err := a.abs(rt.SaveState)
		return &command.Request{RequestType: &command.Request_SaveState{SaveState: p}}, err
	case *command.Request_LoadState:
		p, err := a.abs(rt.LoadState)
		return &command.Request{RequestType: &command.Request_LoadState{LoadState: p}}, err
	}
	return req, nil
}
