package supervisor_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// This file runs a copy of the test binary as another user (uid 65534) to
// act as a hostile local peer of the command socket: a fake server squatting
// the socket path, or a client holding or flooding connections. The mode is
// in $SOZU_TEST_HELPER, the socket in $SOZU_TEST_SOCK, a count in
// $SOZU_TEST_N; the helper reports on stdout, one line per fact, and exits
// when its stdin is closed (or when its mode is done).

const helperEnv = "SOZU_TEST_HELPER"

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *sozutest.SyncBuffer
	done  chan struct{}
}

// startHelper runs the test binary as cred in mode, against sock.
func startHelper(t *testing.T, cred *syscall.Credential, mode, sock string, n int) *helper {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(sharedDir(t), "helper.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	h := &helper{out: &sozutest.SyncBuffer{}, done: make(chan struct{})}
	h.cmd = exec.Command(bin)
	h.cmd.Env = append(os.Environ(), helperEnv+"="+mode, "SOZU_TEST_SOCK="+sock, "SOZU_TEST_N="+strconv.Itoa(n))
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.stdin.Close()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
			<-h.done
		}
		if t.Failed() {
			t.Logf("helper %s output:\n%s", mode, h.out)
		}
	})
	return h
}

// wait waits until the helper has printed line (a whole line).
func (h *helper) wait(t *testing.T, line string) {
	t.Helper()
	waitFor(t, 30*time.Second, "helper output "+strconv.Quote(line), func() bool {
		return containsLine(h.out.String(), line)
	})
}

func containsLine(out, line string) bool {
	for _, l := range splitLines(out) {
		if l == line {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// runHelper is the helper's main; it returns the exit code.
func runHelper() int {
	sock := os.Getenv("SOZU_TEST_SOCK")
	n, _ := strconv.Atoi(os.Getenv("SOZU_TEST_N"))
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	untilStdinCloses := func() { io.Copy(io.Discard, os.Stdin) }
	switch mode := os.Getenv(helperEnv); mode {
	case "fake-server":
		// Squats sock and counts what each client sends.
		l, err := net.Listen("unix", sock)
		if err != nil {
			say("listen: %v", err)
			return 1
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(30 * time.Second))
					n, _ := io.Copy(io.Discard, c)
					say("conn bytes=%d", n)
				}()
			}
		}()
		say("ready")
		untilStdinCloses()
		l.Close()
	case "hold":
		// Opens n connections and holds them, sending nothing.
		var held []net.Conn
		for range n {
			c, err := net.Dial("unix", sock)
			if err != nil {
				say("dial: %v", err)
				break
			}
			held = append(held, c)
		}
		say("held %d", len(held))
		untilStdinCloses()
	case "once":
		// One status request, then: is the connection closed?
		c, err := net.Dial("unix", sock)
		if err != nil {
			say("dial: %v", err)
			return 1
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := frame.WriteMessage(c, statusRequest(), frame.DefaultMaxSize); err != nil {
			say("send: %v", err)
			return 1
		}
		r := frame.NewReader(c, frame.DefaultMaxSize)
		resp := &command.Response{}
		if err := r.ReadMessage(resp); err != nil {
			say("receive: %v", err)
			return 1
		}
		say("answer %s", resp.GetStatus())
		c.SetDeadline(time.Now().Add(5 * time.Second))
		switch err := r.ReadMessage(&command.Response{}); {
		case errors.Is(err, io.EOF):
			say("closed")
		case errors.Is(err, os.ErrDeadlineExceeded):
			say("still open")
		default:
			say("after the answer: %v", err)
		}
	case "spam":
		// n refused requests on one connection, as fast as answered.
		c, err := net.Dial("unix", sock)
		if err != nil {
			say("dial: %v", err)
			return 1
		}
		c.SetDeadline(time.Now().Add(60 * time.Second))
		r := frame.NewReader(c, frame.DefaultMaxSize)
		failures := 0
		for i := range n {
			req := &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{ClusterId: proto.String(fmt.Sprintf("flood-%d", i))}}}
			if err := frame.WriteMessage(c, req, frame.DefaultMaxSize); err != nil {
				say("send %d: %v", i, err)
				break
			}
			resp := &command.Response{}
			if err := r.ReadMessage(resp); err != nil {
				say("receive %d: %v", i, err)
				break
			}
			if resp.GetStatus() == command.ResponseStatus_FAILURE {
				failures++
			}
		}
		say("failures=%d", failures)
	case "poll":
		// n status queries on one connection, as fast as answered.
		c, err := net.Dial("unix", sock)
		if err != nil {
			say("dial: %v", err)
			return 1
		}
		c.SetDeadline(time.Now().Add(120 * time.Second))
		r := frame.NewReader(c, frame.DefaultMaxSize)
		ok := 0
		for i := range n {
			if err := frame.WriteMessage(c, statusRequest(), frame.DefaultMaxSize); err != nil {
				say("send %d: %v", i, err)
				break
			}
			for {
				resp := &command.Response{}
				if err := r.ReadMessage(resp); err != nil {
					say("receive %d: %v", i, err)
					return 1
				}
				if resp.GetStatus() == command.ResponseStatus_PROCESSING {
					continue
				}
				if resp.GetStatus() == command.ResponseStatus_OK {
					ok++
				}
				break
			}
		}
		say("ok=%d", ok)
	default:
		say("unknown helper mode %q", mode)
		return 2
	}
	return 0
}

func statusRequest() *command.Request {
	return &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}}
}
