// Package sozutest runs real sozu processes for end-to-end tests: it builds
// the binary, writes configurations, starts and stops supervisors, and talks
// to their command socket and CLI.
package sozutest

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

// Bin is the sozu binary under test, set by Main.
var Bin string

// Main builds the sozu binary (with the race detector when race is true),
// runs the tests and removes the binary. Call it from TestMain:
//
//	func TestMain(m *testing.M) { sozutest.Main(m, raceEnabled) }
func Main(m *testing.M, race bool) {
	if sock := os.Getenv(dialAsEnv); sock != "" {
		dialAsChild(sock) // DialAs's child: no tests, no build
	}
	dir, err := os.MkdirTemp("", "sozu-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable and searchable by all: tests run the CLI as other uids.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	Bin = filepath.Join(dir, "sozu")
	args := []string{"build", "-o", Bin}
	if race {
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

// Proxy is a running `sozu start` in its own directory and process group.
type Proxy struct {
	T       testing.TB
	Dir     string
	Sock    string
	CfgPath string
	Cmd     *exec.Cmd
	Out     *SyncBuffer
	Done    chan struct{} // closed when the supervisor has exited
	WaitErr error         // valid after Done
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// handedOut holds the ports FreePort gave in this process: the kernel may
// give a port just closed again, and two of a test's listeners would then
// share it.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that it has not returned before in this process.
func FreePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		handedOut.Lock()
		seen := handedOut.ports[port]
		handedOut.ports[port] = true
		handedOut.Unlock()
		if !seen {
			return port
		}
	}
}

// WriteConfig writes dir/config.toml with a command socket in dir, the
// given number of workers, one HTTP listener on a free port, and extra TOML
// (global keys, more listeners, clusters) appended after the globals.
func WriteConfig(t testing.TB, dir string, workers int, extra string) (cfgPath, sock string, httpPort int) {
	t.Helper()
	sock = filepath.Join(dir, "sozu.sock")
	httpPort = FreePort(t)
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

// Start starts sozu on cfgPath and waits until its command socket answers.
// The proxy is stopped (SIGINT, then SIGKILL of its process group) when the
// test ends; its output is logged if the test failed.
func Start(t testing.TB, dir, cfgPath, sock string) *Proxy {
	t.Helper()
	return StartWith(t, dir, cfgPath, sock, nil)
}

// StartAs is Start with the supervisor run as another user: cred nil runs
// it as the test itself; otherwise setpriv(1) gives it cred's uid and gid
// and the supplementary groups of that uid's account (--init-groups).
func StartAs(t testing.TB, dir, cfgPath, sock string, cred *syscall.Credential) *Proxy {
	t.Helper()
	if cred == nil {
		return Start(t, dir, cfgPath, sock)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("running sozu as uid %d: %v", cred.Uid, err)
	}
	return StartWith(t, dir, cfgPath, sock, func(cmd *exec.Cmd) {
		cmd.Path = setpriv
		cmd.Args = append([]string{"setpriv", fmt.Sprintf("--reuid=%d", cred.Uid), fmt.Sprintf("--regid=%d", cred.Gid),
			"--init-groups", "--"}, cmd.Args...)
	})
}

// StartWith is Start with prepare, when not nil, called on the command
// before it starts (to add ExtraFiles or credentials; keep Setpgid).
func StartWith(t testing.TB, dir, cfgPath, sock string, prepare func(*exec.Cmd)) *Proxy {
	t.Helper()
	p := &Proxy{T: t, Dir: dir, Sock: sock, CfgPath: cfgPath, Out: &SyncBuffer{}, Done: make(chan struct{})}
	p.Cmd = exec.Command(Bin, "start", "-c", cfgPath)
	p.Cmd.Dir = dir
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if prepare != nil {
		prepare(p.Cmd)
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.WaitErr = p.Cmd.Wait(); close(p.Done) }()
	t.Cleanup(p.Stop)
	WaitFor(t, 20*time.Second, "command socket "+sock+" answers", func() bool {
		select {
		case <-p.Done:
			t.Fatalf("sozu exited during start: %v\n%s", p.WaitErr, p.Out)
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

// Stop interrupts the supervisor (a hard stop), waits for it, and kills
// whatever is left of its process group.
func (p *Proxy) Stop() {
	select {
	case <-p.Done:
	default:
		p.Cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.Done:
		case <-time.After(10 * time.Second):
			p.T.Errorf("sozu did not exit within 10s of SIGINT")
			syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
			<-p.Done
		}
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	out := p.Out.String()
	if p.T.Failed() || strings.Contains(out, "DATA RACE") {
		p.T.Logf("sozu output:\n%s", out)
	}
	if strings.Contains(out, "DATA RACE") {
		p.T.Errorf("the race detector fired in a sozu process")
	}
}

// Alive reports whether the supervisor is still running.
func (p *Proxy) Alive() bool {
	select {
	case <-p.Done:
		return false
	default:
		return true
	}
}

// WaitFor polls cond until it holds or d passes, then fails the test.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client is a command-socket client built on the frame codec.
type Client struct {
	Conn net.Conn
	r    *frame.Reader
}

// Dial connects to a command socket; the connection closes with the test.
func Dial(t testing.TB, sock string) *Client {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{Conn: c, r: frame.NewReader(c, frame.DefaultMaxSize)}
}

// Do sends req and returns the PROCESSING messages and the terminal answer.
func (c *Client) Do(t testing.TB, req *command.Request) ([]string, *command.Response) {
	t.Helper()
	c.Conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := frame.WriteMessage(c.Conn, req, frame.DefaultMaxSize); err != nil {
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

// MustOK sends req and fails the test unless the answer is OK.
func (c *Client) MustOK(t testing.TB, req *command.Request) *command.Response {
	t.Helper()
	_, resp := c.Do(t, req)
	if resp.GetStatus() != command.ResponseStatus_OK {
		t.Fatalf("%s: %v %q", command.VerbName(req), resp.GetStatus(), resp.GetMessage())
	}
	return resp
}

// CLI runs `sozu -c <config> args...` and returns stdout, stderr and the
// exit code.
func (p *Proxy) CLI(args ...string) (string, string, int) {
	return p.CLIAs(nil, args...)
}

// CLIAs runs the CLI as another user (cred nil: as the test itself).
func (p *Proxy) CLIAs(cred *syscall.Credential, args ...string) (string, string, int) {
	cmd := exec.Command(Bin, append([]string{"-c", p.CfgPath}, args...)...)
	// A -race binary sleeps a second at exit unless told otherwise.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		p.T.Fatalf("running sozu %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// MustCLI runs the CLI and fails the test unless it exits 0.
func (p *Proxy) MustCLI(args ...string) string {
	p.T.Helper()
	out, errOut, code := p.CLI(args...)
	if code != 0 {
		p.T.Fatalf("sozu %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// RunWithTimeout runs cmd (in its own process group) and kills the group if
// it has not exited after d.
func RunWithTimeout(cmd *exec.Cmd, d time.Duration) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return err
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not exit within %v", cmd.Path, d)
	}
}
