package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
	"github.com/sozu-go/sozu/supervisor/config"
)

// testApp is an app writing to buffers, with no environment, no colour, and
// a configuration loader that fails until a test sets one.
func testApp(t *testing.T) (*app, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{
		stdout: &out,
		stderr: &errOut,
		getenv: func(string) string { return "" },
		loadConfig: func(path string) (clientConfig, error) {
			return clientConfig{}, errors.New("no configuration in this test")
		},
		checkConfig: func(path string) ([]string, []string, error) {
			return nil, nil, errors.New("no configuration in this test")
		},
		dial:     Dial,
		abs:      func(p string) (string, error) { return filepath.Join("/cwd", p), nil },
		readFile: os.ReadFile,
	}
	return a, &out, &errOut
}

// withSocket points the app's configuration at a command socket.
func withSocket(a *app, path string) {
	a.loadConfig = func(string) (clientConfig, error) { return clientConfig{socket: path}, nil }
}

// socketPath returns a fresh, short path for a unix socket (sun_path is
// limited to 108 bytes, test temp dirs can be longer).
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sozucli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "sozu.sock")
}

// serve runs a minimal peer on a real unix socket: for each request read
// on a connection it writes the responses handle returns, in order; nil
// closes the connection. It speaks only the framing; it is not a
// supervisor.
func serve(t *testing.T, handle func(req *command.Request) []*command.Response) string {
	t.Helper()
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				r := frame.NewReader(conn, 0)
				for {
					req := &command.Request{}
					if r.ReadMessage(req) != nil {
						return
					}
					resps := handle(req)
					if resps == nil {
						return
					}
					for _, resp := range resps {
						if frame.WriteMessage(conn, resp, 0) != nil {
							return
						}
					}
				}
			})
		}
	})
	return path
}

func resp(status command.ResponseStatus, msg string, content *command.ResponseContent) *command.Response {
	return &command.Response{Status: status.Enum(), Message: &msg, Content: content}
}

const (
	ok         = command.ResponseStatus_OK
	processing = command.ResponseStatus_PROCESSING
	failure    = command.ResponseStatus_FAILURE
)

var statusReq = &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}}

func workersContent(states ...command.RunState) *command.ResponseContent {
	var vec []*command.WorkerInfo
	for i, s := range states {
		vec = append(vec, &command.WorkerInfo{Id: ptr(uint32(i)), Pid: ptr(int32(1000 + i)), RunState: s.Enum()})
	}
	return &command.ResponseContent{ContentType: &command.ResponseContent_Workers{Workers: &command.WorkerInfos{Vec: vec}}}
}

func TestClientProcessingThenTerminal(t *testing.T) {
	path := serve(t, func(req *command.Request) []*command.Response {
		return []*command.Response{
			resp(processing, "Querying status of workers...", nil),
			resp(processing, "Worker 0 is processing Status-0-1-0. ", nil),
			resp(ok, "Successfully collected the status of workers", workersContent(command.RunState_RUNNING)),
		}
	})
	c, err := Dial(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for round := range 2 { // the connection carries several requests in turn
		var progress []string
		r, err := c.Do(t.Context(), statusReq, func(p *command.Response) { progress = append(progress, p.GetMessage()) })
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if r.GetStatus() != ok || len(r.GetContent().GetWorkers().GetVec()) != 1 {
			t.Errorf("round %d: terminal response %v", round, r)
		}
		if want := []string{"Querying status of workers...", "Worker 0 is processing Status-0-1-0. "}; strings.Join(progress, "|") != strings.Join(want, "|") {
			t.Errorf("round %d: progress %q, want %q", round, progress, want)
		}
	}
}

func TestRunStatusText(t *testing.T) {
	path := serve(t, func(*command.Request) []*command.Response {
		return []*command.Response{
			resp(processing, "Querying status of workers...", nil),
			resp(ok, "Successfully collected the status of workers", workersContent(command.RunState_RUNNING, command.RunState_NOT_ANSWERING)),
		}
	})
	a, out, errOut := testApp(t)
	withSocket(a, path)
	if code := a.run([]string{"status"}); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	if errOut.String() != "Querying status of workers...\n" {
		t.Errorf("stderr %q", errOut)
	}
	want := "WORKER  PID   STATE\n0       1000  RUNNING\n1       1001  NOT_ANSWERING\n2 workers: 1 running, 1 not answering\n"
	if out.String() != want {
		t.Errorf("stdout\n%s\nwant\n%s", out, want)
	}
}

func TestRunStatusJSON(t *testing.T) {
	path := serve(t, func(*command.Request) []*command.Response {
		return []*command.Response{
			resp(processing, "Querying status of workers...", nil),
			resp(ok, "Successfully collected the status of workers", workersContent(command.RunState_RUNNING)),
		}
	})
	a, out, errOut := testApp(t)
	withSocket(a, path)
	if code := a.run([]string{"status", "--json"}); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr %q, want nothing with --json", errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if doc["status"] != "OK" || doc["content"].(map[string]any)["workers"] == nil {
		t.Errorf("document %v", doc)
	}
}

func TestRunFailureExitCodes(t *testing.T) {
	tests := []struct {
		msg  string
		json bool
		code int
	}{
		{"could not dispatch request on the main process state: Did not find Cluster with address or id 'shop'", false, exitFailure},
		{"could not dispatch request on the main process state: Did not find Cluster with address or id 'shop'", true, exitFailure},
		{"unauthorized: actor UID 1000 not in command_allowed_uids", false, exitNoPerm},
		{"unauthorized: actor UID 1000 not in command_allowed_uids", true, exitNoPerm},
	}
	for _, tt := range tests {
		path := serve(t, func(*command.Request) []*command.Response {
			return []*command.Response{resp(failure, tt.msg, nil)}
		})
		a, out, errOut := testApp(t)
		withSocket(a, path)
		args := []string{"cluster", "remove", "--id", "shop"}
		if tt.json {
			args = append(args, "-j")
		}
		if code := a.run(args); code != tt.code {
			t.Errorf("%s json=%v: exit %d, want %d", tt.msg, tt.json, code, tt.code)
		}
		if tt.json {
			var doc jsonEnvelope
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Status != "FAILURE" || doc.Message != tt.msg {
				t.Errorf("stdout %s (%v)", out, err)
			}
		} else if errOut.String() != "error: "+tt.msg+"\n" || out.Len() != 0 {
			t.Errorf("stdout %q stderr %q", out, errOut)
		}
	}
}

func TestRunMissingSocket(t *testing.T) {
	a, out, errOut := testApp(t)
	path := socketPath(t) // nothing listens there
	withSocket(a, path)
	if code := a.run([]string{"status"}); code != exitUnavailable {
		t.Errorf("exit %d, want %d", code, exitUnavailable)
	}
	if want := "sozu status: supervisor unreachable at " + path + ": "; !strings.HasPrefix(errOut.String(), want) || out.Len() != 0 {
		t.Errorf("stderr %q, want prefix %q", errOut, want)
	}
}

func TestRunConnectionRefused(t *testing.T) {
	path := socketPath(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // a stale socket file: connecting is refused
	c, err := Dial(path, 0)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || exitCodeFor(err) != exitUnavailable {
		t.Errorf("err %v, exit %d", err, exitCodeFor(err))
	}
}

func TestRunPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores socket permissions")
	}
	path := serve(t, func(*command.Request) []*command.Response { return nil })
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	a, _, errOut := testApp(t)
	withSocket(a, path)
	if code := a.run([]string{"status"}); code != exitNoPerm {
		t.Errorf("exit %d, want %d; stderr %s", code, exitNoPerm, errOut)
	}
}

func TestRunConnectionClosedBeforeAnswer(t *testing.T) {
	path := serve(t, func(*command.Request) []*command.Response {
		return nil // hang up without answering
	})
	a, _, errOut := testApp(t)
	withSocket(a, path)
	if code := a.run([]string{"listener", "list"}); code != exitUnavailable {
		t.Errorf("exit %d, want %d", code, exitUnavailable)
	}
	if !strings.Contains(errOut.String(), "closed the connection before its final answer") {
		t.Errorf("stderr %q", errOut)
	}
}

// TestRunTimeoutRealSocket: the peer answers PROCESSING and then nothing;
// -t 1 ends the wait by a deadline (no sleep anywhere).
func TestRunTimeoutRealSocket(t *testing.T) {
	path := serve(t, func(*command.Request) []*command.Response {
		return []*command.Response{resp(processing, "Processing worker request...", nil)}
	})
	a, _, errOut := testApp(t)
	withSocket(a, path)
	if code := a.run([]string{"-t", "1", "cluster", "remove", "--id", "x"}); code != exitUnavailable {
		t.Errorf("exit %d, want %d", code, exitUnavailable)
	}
	// The PROCESSING line may or may not beat the 1 ms deadline.
	if want := "sozu cluster remove: no answer from supervisor at " + path + " in time (see -t)\n"; !strings.HasSuffix(errOut.String(), want) {
		t.Errorf("stderr %q\nwant suffix %q", errOut, want)
	}
}

// TestClientDeadline runs in a synctest bubble on an in-memory pipe: the
// 10 s deadline passes on the fake clock, instantly.
func TestClientDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cli, srv := net.Pipe()
		defer srv.Close()
		c := NewClient(cli, 0)
		defer c.Close()
		go func() {
			r := frame.NewReader(srv, 0)
			if r.ReadMessage(&command.Request{}) != nil {
				return
			}
			frame.WriteMessage(srv, resp(processing, "Applying state file...", nil), 0)
			// …and never the terminal response.
		}()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		var progress int
		_, err := c.Do(ctx, statusReq, func(*command.Response) { progress++ })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("gave up after %v, want exactly 10s", got)
		}
		if progress != 1 || exitCodeFor(err) != exitUnavailable {
			t.Errorf("progress %d, exit %d", progress, exitCodeFor(err))
		}
	})
}

// TestClientCancel: cancelling the context interrupts a blocked read.
func TestClientCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cli, srv := net.Pipe()
		defer srv.Close()
		c := NewClient(cli, 0)
		defer c.Close()
		go frame.NewReader(srv, 0).ReadMessage(&command.Request{}) // read, never answer
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Do(ctx, statusReq, nil)
			errc <- err
		}()
		synctest.Wait() // Do is now blocked reading
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) || err.Error() != "interrupted" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClientExpiredContext(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	c := NewClient(cli, 0)
	defer c.Close()
	ctx, cancel := context.WithDeadline(t.Context(), time.Unix(1, 0))
	defer cancel()
	if _, err := c.Do(ctx, statusReq, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestClientUndecodableAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cli, srv := net.Pipe()
		defer srv.Close()
		c := NewClient(cli, 0)
		defer c.Close()
		go func() {
			frame.NewReader(srv, 0).ReadMessage(&command.Request{})
			srv.Write([]byte{10, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}) // bad protobuf
		}()
		_, err := c.Do(t.Context(), statusReq, nil)
		if !frame.IsFrameError(err) || exitCodeFor(err) != exitFailure {
			t.Fatalf("err = %v, exit %d", err, exitCodeFor(err))
		}
	})
}

func TestDeadlinePerVerb(t *testing.T) {
	tests := []struct {
		line       string
		configured time.Duration // ctl_command_timeout; 0 = not set
		want       time.Duration // 0 = no deadline
	}{
		{"status", 0, defaultTimeout},
		{"state load --file x", 0, 0},
		{"shutdown", 0, 0},
		{"shutdown -t 500", 0, 500 * time.Millisecond},
		{"status -t 0", 0, 0},
		{"state save --file x", 0, defaultTimeout},
		{"status", 2 * time.Second, 2 * time.Second},
		{"status -t 500", 2 * time.Second, 500 * time.Millisecond},
		{"state load --file x", 2 * time.Second, 0},
	}
	for _, tt := range tests {
		inv, err := parseArgs(strings.Fields(tt.line))
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		ctx, cancel := deadline(inv, tt.configured)
		dl, has := ctx.Deadline()
		cancel()
		if has != (tt.want != 0) || (has && (dl.Sub(before) < tt.want || dl.Sub(before) > tt.want+time.Minute)) {
			t.Errorf("%s: deadline %v (set %v), want +%v", tt.line, dl.Sub(before), has, tt.want)
		}
	}
}

func TestRunStatePathResolved(t *testing.T) {
	got := make(chan *command.Request, 1)
	path := serve(t, func(req *command.Request) []*command.Response {
		got <- req
		return []*command.Response{resp(ok, "Saved 3 config messages to /cwd/s.json", nil)}
	})
	a, out, _ := testApp(t)
	withSocket(a, path)
	if code := a.run([]string{"state", "save", "--file", "s.json"}); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if p := (<-got).GetSaveState(); p != "/cwd/s.json" {
		t.Errorf("save_state %q, want the absolute path", p)
	}
	if out.String() != "Saved 3 config messages to /cwd/s.json\n" {
		t.Errorf("stdout %q", out)
	}
}

func TestRunConfigErrors(t *testing.T) {
	a, out, errOut := testApp(t)
	a.loadConfig = func(path string) (clientConfig, error) {
		return clientConfig{}, config.Errors{
			&config.Error{File: path, Line: 3, Col: 1, Key: "command_socket", Msg: "must not be empty"},
			&config.Error{File: path, Line: 9, Col: 5, Key: "clusters.shop.backends[0].address", Msg: "invalid socket address"},
		}
	}
	code := a.run([]string{"-c", "/etc/x.toml", "status"})
	if code != exitConfig || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	want := "sozu status: cannot load configuration /etc/x.toml:\n" +
		"  /etc/x.toml:3:1: command_socket: must not be empty\n" +
		"  /etc/x.toml:9:5: clusters.shop.backends[0].address: invalid socket address\n"
	if errOut.String() != want {
		t.Errorf("stderr\n%s\nwant\n%s", errOut, want)
	}
}

func TestConfigCheck(t *testing.T) {
	a, out, errOut := testApp(t)
	a.getenv = func(k string) string {
		if k == "SOZU_CONFIG" {
			return "/env/config.toml"
		}
		return ""
	}
	var loaded []string
	a.checkConfig = func(path string) ([]string, []string, error) {
		loaded = append(loaded, path)
		return nil, nil, nil
	}
	if code := a.run([]string{"config", "check"}); code != exitOK || out.String() != "configuration OK: /env/config.toml\n" {
		t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	out.Reset()
	if code := a.run([]string{"config", "check", "-c", "/flag.toml", "-j"}); code != exitOK ||
		out.String() != "{\n  \"status\": \"OK\",\n  \"message\": \"configuration OK: /flag.toml\"\n}\n" {
		t.Errorf("exit %d stdout %q", code, out)
	}
	if strings.Join(loaded, ",") != "/env/config.toml,/flag.toml" {
		t.Errorf("loaded %q", loaded)
	}

	out.Reset()
	errOut.Reset()
	a.getenv = func(string) string { return "" }
	a.checkConfig = func(path string) ([]string, []string, error) {
		return nil, nil, config.Errors{&config.Error{File: path, Line: 1, Key: "worker_count", Msg: "must be at least 1"}}
	}
	code := a.run([]string{"config", "check", "--json"})
	if code != exitConfig {
		t.Errorf("exit %d, want %d", code, exitConfig)
	}
	if want := "sozu config check: cannot load configuration " + defaultConfigPath + ":\n  " + defaultConfigPath + ":1: worker_count: must be at least 1\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	var doc jsonEnvelope
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Status != "FAILURE" || len(doc.Errors) != 1 {
		t.Errorf("stdout %s (%v)", out, err)
	}
}

// TestConfigCheckWarnsAndStrict: config check prints one warning per key
// not in force (from the real loader), exits 0; --strict exits 78; --json
// lists them.
func TestConfigCheckWarnsAndStrict(t *testing.T) {
	const path = "../../supervisor/config/testdata/truth/warnings.toml"
	want, _, err := checkFullConfig(path)
	if err != nil || len(want) == 0 {
		t.Fatalf("the test configuration: %v, %d warnings", err, len(want))
	}
	a, out, errOut := testApp(t)
	a.checkConfig = checkFullConfig
	if code := a.run([]string{"config", "check", "-c", path}); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	if n := strings.Count(errOut.String(), "warning: "); n != len(want) {
		t.Errorf("%d warnings printed, want %d:\n%s", n, len(want), errOut)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("with %d keys not in force", len(want))) {
		t.Errorf("stdout %q", out)
	}
	out.Reset()
	errOut.Reset()
	if code := a.run([]string{"config", "check", "--strict", "-c", path}); code != exitConfig || out.Len() != 0 ||
		!strings.Contains(errOut.String(), "invalid configuration (--strict)") {
		t.Errorf("--strict: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out.Reset()
	if code := a.run([]string{"config", "check", "--json", "--strict", "-c", path}); code != exitConfig {
		t.Errorf("--json --strict: exit %d", code)
	}
	var doc jsonEnvelope
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Status != "FAILURE" || len(doc.Warnings) != len(want) {
		t.Errorf("--json: %v %+v", err, doc)
	}
	// A configuration with every key in force passes --strict.
	out.Reset()
	if code := a.run([]string{"config", "check", "--strict", "-c", "../../docs/examples/config.toml"}); code != exitOK {
		t.Errorf("example configuration under --strict: exit %d", code)
	}
}
