package supervisor_test

import (
	"bytes"
	"errors"
	"fmt"

	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// sozuBin is the sozu binary under test, built once by TestMain (with the
// race detector when the tests themselves run with it).
var sozuBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sozu-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sozuBin = filepath.Join(dir, "sozu")
	args := []string{"build", "-o", sozuBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/sozu-go/sozu/cmd/sozu")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building sozu: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proxy is a running `sozu start` in its own directory.
type proxy struct {
	t       *testing.T
	dir     string
	sock    string
	cfgPath string
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	waitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeConfig writes a configuration in dir with a command socket there,
// the given number of workers, one HTTP listener, and extra TOML appended.
func writeConfig(t *testing.T, dir string, workers int, extra string) (cfgPath, sock string, httpPort int) {
	t.Helper()
	sock = filepath.Join(dir, "sozu.sock")
	httpPort = freePort(t)
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = %d
worker_timeout = 5
log_level = "debug"
%s

[[listeners]]
protocol = "http"
address = "127.0.0.1:%d"
`, sock, workers, extra, httpPort)
	cfgPath = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, sock, httpPort
}

// startProxy starts sozu on cfgPath and waits until its command socket
// answers. The proxy is hard-stopped (then killed) when the test ends.
func startProxy(t *testing.T, dir, cfgPath, sock string) *proxy {
	t.Helper()
	p := &proxy{t: t, dir: dir, sock: sock, cfgPath: cfgPath, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(sozuBin, "start", "-c", cfgPath)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	waitFor(t, 20*time.Second, "command socket "+sock+" answers", func() bool {
		select {
		case <-p.done:
			t.Fatalf("sozu exited during start: %v\n%s", p.waitErr, p.out)
		default:
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return p
}

func (p *proxy) stop() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Any worker left behind would be a leak: the whole group must be gone.
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	if p.t.Failed() || strings.Contains(p.out.String(), "DATA RACE") {
		p.t.Logf("sozu output:\n%s", p.out)
	}
	if strings.Contains(p.out.String(), "DATA RACE") {
		p.t.Errorf("the race detector fired in a sozu process")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a command-socket client for tests, built on the frame codec.
type client struct {
	conn net.Conn
	r    *frame.Reader
}

func dial(t *testing.T, sock string) *client {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{conn: c, r: frame.NewReader(c, frame.DefaultMaxSize)}
}

// do sends req and returns the PROCESSING messages and the terminal answer.
func (c *client) do(t *testing.T, req *command.Request) ([]string, *command.Response) {
	t.Helper()
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := frame.WriteMessage(c.conn, req, frame.DefaultMaxSize); err != nil {
		t.Fatalf("sending %s: %v", command.VerbName(req), err)
	}
	var progress []string
	for {
		resp := &command.Response{}
		if err := c.r.ReadMessage(resp); err != nil {
			t.Fatalf("reading the answer to %s: %v", command.VerbName(req), err)
		}
		if resp.GetStatus() == command.ResponseStatus_PROCESSING {
			progress = append(progress, resp.GetMessage())
			continue
		}
		return progress, resp
	}
}

// mustOK sends req and fails the test unless the answer is OK.
func (c *client) mustOK(t *testing.T, req *command.Request) *command.Response {
	t.Helper()
	_, resp := c.do(t, req)
	if resp.GetStatus() != command.ResponseStatus_OK {
		t.Fatalf("%s: %v %q", command.VerbName(req), resp.GetStatus(), resp.GetMessage())
	}
	return resp
}

// sozu runs the CLI against p and returns stdout, stderr and the exit code.
func (p *proxy) sozu(args ...string) (string, string, int) {
	cmd := exec.Command(sozuBin, append([]string{"-c", p.cfgPath}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("running sozu %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func (p *proxy) mustCLI(args ...string) string {
	p.t.Helper()
	out, errOut, code := p.sozu(args...)
	if code != 0 {
		p.t.Fatalf("sozu %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

var execCommand = exec.Command

// runWithTimeout runs cmd and kills it if it has not exited after d.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not exit within %v", cmd.Path, d)
	}
}
