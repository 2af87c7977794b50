package tcp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

// TestMaxConnections: over the limit a connection is neither closed nor
// relayed: it waits, and is relayed as soon as a slot frees; one waiting
// longer than the queue timeout is closed without reaching the backend.
func TestMaxConnections(t *testing.T) {
	o := startOrigin(t, echo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	sets := reg.Update([]backends.Spec{{ClusterID: "c", ID: "a", Addr: o.addr, Weight: 100}}, nil)
	const queueTimeout = time.Second
	lim := &ConnLimit{Max: 2, QueueLen: 2, QueueTimeout: queueTimeout}
	srv := NewServer(ln, &Listener{Cluster: &Cluster{ID: "c", Backends: sets["c"]}}, Options{Conns: lim})
	go srv.Serve()
	defer srv.Close()
	addr := ln.Addr().String()
	ping := func(c net.Conn) error {
		io.WriteString(c, "a")
		_, err := io.ReadFull(c, make([]byte, 1))
		return err
	}
	held := []net.Conn{dial(t, addr), dial(t, addr)}
	for _, c := range held {
		if err := ping(c); err != nil {
			t.Fatal(err)
		}
	}
	third := dial(t, addr)
	io.WriteString(third, "a")
	third.SetReadDeadline(time.Now().Add(queueTimeout / 4))
	if _, err := third.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("over the limit: %v, want a connection left waiting", err)
	}
	if n := o.conns.Load(); n != 2 {
		t.Fatalf("the backend got %d connections, want 2", n)
	}
	t0 := time.Now()
	held[0].Close()
	third.SetReadDeadline(t0.Add(queueTimeout / 2))
	if _, err := io.ReadFull(third, make([]byte, 1)); err != nil {
		t.Fatalf("the waiting connection once a slot freed: %v", err)
	}
	t.Logf("relayed %v after a slot freed", time.Since(t0))

	// t0 before the dial: the worker's queue timer starts at its accept,
	// which may come before dial returns here.
	t0 = time.Now()
	late := dial(t, addr)
	if d := closedWithin(t, late, t0, 10*time.Second); d < queueTimeout {
		t.Fatalf("waiting connection closed after %v, before the queue timeout %v", d, queueTimeout)
	}
	if n := o.conns.Load(); n != 3 || lim.Dropped() != 1 {
		t.Fatalf("the backend got %d connections (want 3), %d dropped (want 1)", n, lim.Dropped())
	}
	for _, c := range []net.Conn{held[1], third} {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := ping(c); err != nil {
			t.Fatalf("a connection kept: %v", err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestEMFILE runs a server in a child process whose file descriptor limit
// leaves room for 6 client connections. The 7th and later wait in the
// kernel's queue while accept fails with EMFILE; the accept loop backs off
// (a few warnings, not a busy loop), and serves again once descriptors are
// free.
func TestEMFILE(t *testing.T) {
	if os.Getenv("SOZU_TCP_EMFILE_BACKEND") != "" {
		emfileChild(t)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	o := startOrigin(t, echo)
	cmd := exec.Command(os.Args[0], "-test.run=^TestEMFILE$", "-test.v")
	cmd.Env = append(os.Environ(), "SOZU_TCP_EMFILE_BACKEND="+o.addr.String())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	var warnings atomic.Int64
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "retrying in") {
				warnings.Add(1)
			}
		}
	}()
	var addr string
	var base, limit int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "EMFILE-CHILD %s %d %d", &addr, &base, &limit); err == nil {
			break
		}
	}
	if addr == "" {
		t.Fatal("the child did not start")
	}
	go io.Copy(io.Discard, stdout)
	fds := func() int {
		ents, _ := os.ReadDir(filepath.Join("/proc", fmt.Sprint(cmd.Process.Pid), "fd"))
		return len(ents)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (child has %d fds, base %d, limit %d)", what, fds(), base, limit)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	var conns []net.Conn
	for range limit - base + 3 {
		c, err := net.Dial("tcp", addr) // completes in the kernel, accepted or not
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor("the child to run out of descriptors", func() bool { return fds() >= limit })
	waitFor("accept to fail twice with EMFILE", func() bool { return warnings.Load() >= 2 })
	for _, c := range conns {
		c.Close()
	}
	waitFor("the child to free its descriptors", func() bool { return fds() <= base })
	c := dial(t, addr)
	c.Write(append(proxyproto.AppendLocal(nil), "ping"...))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("after EMFILE: %q, %v", buf, err)
	}
	// Each failed accept waits twice as long as the previous one, up to 1 s:
	// a few warnings over the test, where a busy loop gives thousands.
	if n := warnings.Load(); n > 20 {
		t.Fatalf("%d accept retries: the accept loop spins", n)
	}
}

// emfileChild is the child of TestEMFILE: a server expecting PROXY headers
// (so that a waiting client holds one descriptor), under a descriptor limit
// 6 above what it has open.
func emfileChild(t *testing.T) {
	backend := netip.MustParseAddrPort(os.Getenv("SOZU_TCP_EMFILE_BACKEND"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := backends.NewRegistry(backends.Options{})
	sets := reg.Update([]backends.Spec{{ClusterID: "c", ID: "a", Addr: backend, Weight: 100}}, nil)
	log := logrus.New()
	log.SetOutput(os.Stderr)
	srv := NewServer(ln, &Listener{ExpectProxy: true, FrontTimeout: time.Minute,
		Cluster: &Cluster{ID: "c", Backends: sets["c"]}}, Options{Log: logrus.NewEntry(log)})
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	base := len(ents) - 1 // ReadDir's own descriptor is closed by now
	limit := base + 6
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: uint64(limit), Max: uint64(limit)}); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	fmt.Printf("EMFILE-CHILD %s %d %d\n", ln.Addr(), base, limit)
	io.Copy(io.Discard, os.Stdin) // until the parent is done
	os.Exit(0)
}
