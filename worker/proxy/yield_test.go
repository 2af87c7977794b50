package proxy

import (
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestYieldOncePerWake: a session yields at most once per site between two
// wake-ups from the poller, so that sessions yielding in turn cannot keep
// the run queue from draining (and the poller from running) for long.
func TestYieldOncePerWake(t *testing.T) {
	n := 0
	defer func(g func()) { gosched = g }(gosched)
	gosched = func() { n++ }
	var s session
	pollWakes.Add(1)
	for i := range 3 {
		s.yield(yieldRequest)
		if n != 1 {
			t.Fatalf("call %d without a wake-up: %d yields, want 1", i+1, n)
		}
	}
	pollWakes.Add(1)
	s.yield(yieldRequest)
	s.yield(yieldRequest)
	if n != 2 {
		t.Fatalf("after a wake-up: %d yields, want 2", n)
	}
	s.yield(yieldResponse) // each site gets its own turn
	s.yield(yieldResponse)
	if n != 3 {
		t.Fatalf("at the other site: %d yields, want 3", n)
	}
	var other session // every session gets its own turn
	other.yield(yieldRequest)
	if n != 4 {
		t.Fatalf("another session: %d yields, want 4", n)
	}
}

// TestPolledReadCountsWakes: a read that finds its bytes at once counts no
// wake-up; one that parks in the poller until the bytes come counts one.
// Errors are Read's: io.EOF, and the deadline.
func TestPolledReadCountsWakes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	var r polledRead
	buf := make([]byte, 64)
	peer.Write([]byte("now"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	before := pollWakes.Load()
	// The bytes may take a moment to arrive: a read that parks for them
	// would count; read until the three bytes are in without one.
	if _, err := io.ReadFull(readerFunc(func(p []byte) (int, error) { return r.read(c, p) }), buf[:3]); err != nil {
		t.Fatal(err)
	}
	immediate := pollWakes.Load() - before

	done := make(chan error, 1)
	before = pollWakes.Load()
	go func() {
		n, err := r.read(c, buf)
		if err == nil && string(buf[:n]) != "later" {
			err = io.ErrUnexpectedEOF
		}
		done <- err
	}()
	waitParked(t, "polledRead")
	peer.Write([]byte("later"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := pollWakes.Load() - before; d < 1 {
		t.Fatalf("a read that parked counted %d wake-ups, want at least 1", d)
	}
	if immediate > 1 {
		t.Fatalf("a read of bytes already there counted %d wake-ups", immediate)
	}

	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.read(c, buf); !isTimeout(err) {
		t.Fatalf("past the deadline: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	peer.Close()
	if _, err := r.read(c, buf); err != io.EOF {
		t.Fatalf("after the peer's close: %v, want io.EOF", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// waitParked waits until a goroutine whose stack names fn waits in the
// poller ("IO wait").
func waitParked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		st := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(st, "\n\n") {
			if strings.Contains(g, "[IO wait") && strings.Contains(g, fn) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine in %s parked in the poller", fn)
}
