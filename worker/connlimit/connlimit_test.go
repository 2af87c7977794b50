package connlimit

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	l := &Limit{Max: 2}
	if !l.Acquire() || !l.Acquire() || l.Acquire() {
		t.Fatal("a limit of 2 did not admit exactly 2")
	}
	l.Release()
	if !l.Acquire() || l.Open() != 2 {
		t.Fatalf("after a release: open %d", l.Open())
	}
	var nilLimit *Limit
	if !nilLimit.Acquire() || nilLimit.Open() != 0 {
		t.Fatal("a nil limit is not unlimited")
	}
	nilLimit.Release()

	c := &Limit{Max: 50}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Acquire() {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got != 50 || c.Open() != 50 {
		t.Fatalf("concurrent acquires: %d admitted, %d open, want 50", got, c.Open())
	}
}

// countingListener counts the calls to Accept that returned a connection.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// server runs lim.Serve on a new loopback listener; admitted receives the
// connections handed to handle.
type server struct {
	ln       *countingListener
	stop     chan struct{}
	admitted chan net.Conn
	done     chan error
}

func serve(t *testing.T, lim *Limit) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: &countingListener{Listener: ln}, stop: make(chan struct{}),
		admitted: make(chan net.Conn, 16), done: make(chan error, 1)}
	go func() { s.done <- lim.Serve(s.ln, s.stop, t.Logf, func(c net.Conn) { s.admitted <- c }) }()
	t.Cleanup(func() { s.close(t) })
	return s
}

// close stops the loop and checks that Serve returns nil promptly.
func (s *server) close(t *testing.T) {
	t.Helper()
	select {
	case <-s.stop:
		s.ln.Close()
		return
	default:
	}
	close(s.stop) // as a server's StopAccepting: stop, then the listener
	s.ln.Close()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("Serve after stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return 5 s after stop")
	}
}

func (s *server) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// admittedWithin returns the next connection handed to handle, failing
// the test after d.
func (s *server) admittedWithin(t *testing.T, d time.Duration) net.Conn {
	t.Helper()
	select {
	case c := <-s.admitted:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(d):
		t.Fatalf("no connection admitted within %v", d)
		return nil
	}
}

// same reports whether server-side a and client-side b are one connection.
func same(a, b net.Conn) bool { return a.RemoteAddr().String() == b.LocalAddr().String() }

// stillOpen checks that c is neither closed nor reset: a read waits until
// its deadline.
func stillOpen(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connection waiting for a slot: %v, want a read timeout (still open)", err)
	}
	c.SetReadDeadline(time.Time{})
}

// closedWithin checks that the peer closes c (EOF or reset) within d and
// returns how long it took.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	c.SetReadDeadline(t0.Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed within %v: %v", d, err)
	}
	return time.Since(t0)
}

// TestServeQueuesOverTheLimit: at Max a new connection is neither closed
// nor reset; it is served as soon as a slot frees. Once the queue is full
// the loop stops accepting (the kernel's backlog holds the next ones),
// and accepts again when a queued connection gets its slot.
func TestServeQueuesOverTheLimit(t *testing.T) {
	lim := &Limit{Max: 2, QueueLen: 1, QueueTimeout: time.Minute}
	s := serve(t, lim)
	held := []net.Conn{s.dial(t), s.dial(t)}
	served := []net.Conn{s.admittedWithin(t, 5*time.Second), s.admittedWithin(t, 5*time.Second)}

	third := s.dial(t)
	stillOpen(t, third, 300*time.Millisecond)
	if lim.Queued() != 1 || lim.Open() != 2 {
		t.Fatalf("third connection: %d queued, %d open; want 1 and 2", lim.Queued(), lim.Open())
	}
	fourth := s.dial(t) // the queue is full: stays in the kernel's backlog
	stillOpen(t, fourth, 300*time.Millisecond)
	if n := s.ln.accepted.Load(); n != 3 {
		t.Fatalf("%d connections accepted with a full queue, want 3", n)
	}

	served[0].Close()
	t0 := time.Now()
	lim.Release()
	if c := s.admittedWithin(t, 2*time.Second); !same(c, third) {
		t.Fatalf("the freed slot went to %v, want the queued %v", c.RemoteAddr(), third.LocalAddr())
	}
	t.Logf("queued connection served %v after the release", time.Since(t0))
	// The queue had room again: the fourth was accepted and waits there.
	held[0].Close()
	lim.Release()
	if c := s.admittedWithin(t, 2*time.Second); !same(c, fourth) {
		t.Fatalf("the freed slot went to %v, want the queued %v", c.RemoteAddr(), fourth.LocalAddr())
	}
	if lim.Dropped() != 0 || s.ln.accepted.Load() != 4 {
		t.Fatalf("%d connections dropped, %d accepted; want 0 and 4", lim.Dropped(), s.ln.accepted.Load())
	}
}

// TestServeQueueTimeout: a connection waiting for a slot is closed once
// QueueTimeout runs out, never before, and never reaches handle.
func TestServeQueueTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	lim := &Limit{Max: 1, QueueLen: 4, QueueTimeout: timeout}
	s := serve(t, lim)
	s.dial(t)
	s.admittedWithin(t, 5*time.Second)
	waiting := s.dial(t)
	closedWithin(t, waiting, 5*time.Second)
	if lim.Dropped() != 1 || lim.Queued() != 0 || lim.Open() != 1 {
		t.Fatalf("after the timeout: %d dropped, %d queued, %d open; want 1, 0, 1", lim.Dropped(), lim.Queued(), lim.Open())
	}
	select {
	case c := <-s.admitted:
		t.Fatalf("%v reached handle after its timeout", c.RemoteAddr())
	default:
	}
}

// TestServeQueueTimeoutNotEarly: the wait lasts at least QueueTimeout.
func TestServeQueueTimeoutNotEarly(t *testing.T) {
	const timeout = 300 * time.Millisecond
	lim := &Limit{Max: 1, QueueLen: 4, QueueTimeout: timeout}
	s := serve(t, lim)
	s.dial(t)
	s.admittedWithin(t, 5*time.Second)
	t0 := time.Now()
	waiting := s.dial(t)
	closedWithin(t, waiting, 5*time.Second)
	if d := time.Since(t0); d < timeout {
		t.Fatalf("closed after %v, before the queue timeout %v", d, timeout)
	}
}

// TestServeSharedLimit: listeners sharing a Limit share its slots; a slot
// freed on one serves the connection queued on the other, with that
// listener's handle.
func TestServeSharedLimit(t *testing.T) {
	lim := &Limit{Max: 1, QueueLen: 4, QueueTimeout: time.Minute}
	a, b := serve(t, lim), serve(t, lim)
	a.dial(t)
	onA := a.admittedWithin(t, 5*time.Second)
	onB := b.dial(t)
	stillOpen(t, onB, 300*time.Millisecond)
	if lim.Queued() != 1 {
		t.Fatalf("%d queued, want 1", lim.Queued())
	}
	onA.Close()
	lim.Release()
	if c := b.admittedWithin(t, 2*time.Second); !same(c, onB) {
		t.Fatalf("listener b served %v, want %v", c.RemoteAddr(), onB.LocalAddr())
	}
}

// TestServeBacklogWakesOnRelease: without a queue, at Max the loop does
// not call accept (the connection waits in the kernel's backlog, open),
// and a Release wakes it at once.
func TestServeBacklogWakesOnRelease(t *testing.T) {
	lim := &Limit{Max: 1}
	s := serve(t, lim)
	s.dial(t)
	first := s.admittedWithin(t, 5*time.Second)
	next := s.dial(t)
	stillOpen(t, next, 300*time.Millisecond)
	if n := s.ln.accepted.Load(); n != 1 {
		t.Fatalf("%d connections accepted at Max without a queue, want 1", n)
	}
	first.Close()
	lim.Release()
	if c := s.admittedWithin(t, 2*time.Second); !same(c, next) {
		t.Fatalf("admitted %v, want %v", c.RemoteAddr(), next.LocalAddr())
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		max, queueLen int64
		timeout       time.Duration
		queueing      bool
	}{
		{2, 2, time.Minute, true},
		{10000, MaxQueueLen, time.Minute, true},
		{5, 5, 0, false},
		{0, 0, time.Minute, false}, // unlimited: nothing ever waits
	} {
		l := New(tc.max, tc.timeout)
		if l.Max != tc.max || int64(l.QueueLen) != tc.queueLen || l.QueueTimeout != tc.timeout || l.queueing() != tc.queueing {
			t.Errorf("New(%d, %v) = max %d, queue %d, timeout %v, queueing %v", tc.max, tc.timeout,
				l.Max, l.QueueLen, l.QueueTimeout, l.queueing())
		}
	}
}

// TestServeStop: a loop waiting for room (here without a queue: at Max it
// waits before accept) returns as soon as stop closes; connections it had
// queued are closed then.
func TestServeStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		lim  *Limit
	}{
		{"no queue", &Limit{Max: 1}},
		{"queue full", &Limit{Max: 1, QueueLen: 1, QueueTimeout: time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, tc.lim)
			s.dial(t)
			s.admittedWithin(t, 5*time.Second)
			next := s.dial(t)
			stillOpen(t, next, 300*time.Millisecond)
			close(s.stop) // the listener stays open: only stop wakes the loop
			select {
			case err := <-s.done:
				if err != nil {
					t.Fatalf("Serve after stop: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Serve did not return 5 s after stop")
			}
			if tc.lim.queueing() {
				closedWithin(t, next, 5*time.Second)
			}
			if tc.lim.Queued() != 0 {
				t.Fatalf("%d connections still queued after stop", tc.lim.Queued())
			}
		})
	}
}

// emfileListener fails its first n accepts with EMFILE, then hands out c,
// then reports itself closed.
type emfileListener struct {
	net.Listener
	n     int
	c     net.Conn
	calls []time.Time
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.calls = append(l.calls, time.Now())
	switch {
	case len(l.calls) <= l.n:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	case len(l.calls) == l.n+1:
		return l.c, nil
	}
	return nil, net.ErrClosed
}

func (l *emfileListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestServeBacksOffOnEMFILE: each failed accept waits twice as long as the
// previous one (5 ms, 10 ms, ...), warns, and the loop serves again after.
func TestServeBacksOffOnEMFILE(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	ln := &emfileListener{n: 5, c: a}
	var warns int
	var got net.Conn
	err := (&Limit{}).Serve(ln, nil,
		func(string, ...any) { warns++ }, func(c net.Conn) { got = c })
	if err != nil {
		t.Fatal(err)
	}
	if got != a || warns != 5 || len(ln.calls) != 7 {
		t.Fatalf("served %v, %d warnings, %d accepts", got, warns, len(ln.calls))
	}
	for i := 1; i <= 5; i++ {
		want := 5 * time.Millisecond << (i - 1)
		if d := ln.calls[i].Sub(ln.calls[i-1]); d < want {
			t.Fatalf("retry %d after %v, want at least %v", i, d, want)
		}
	}
}

// closeConn is a connection with no socket behind it: its first Close
// calls done, a second one counts in twice.
type closeConn struct {
	net.Conn
	closes atomic.Int32
	done   func()
	twice  *atomic.Int64
}

func (c *closeConn) Close() error {
	if c.closes.Add(1) == 1 {
		c.done()
	} else {
		c.twice.Add(1)
	}
	return nil
}

// TestQueueConcurrent: accept loops of 4 listeners, connections that end
// at once and a short queue timeout, all racing: never more than Max
// served at once, every connection either served or dropped exactly once,
// and nothing left open or queued.
func TestQueueConcurrent(t *testing.T) {
	const loops, perLoop = 4, 200
	lim := &Limit{Max: 3, QueueLen: 5, QueueTimeout: 2 * time.Millisecond}
	var closed sync.WaitGroup
	closed.Add(loops * perLoop)
	var active, peak, served, twice atomic.Int64
	handle := func(c net.Conn) {
		go func() {
			n := active.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			runtime.Gosched()
			active.Add(-1)
			served.Add(1)
			lim.Release() // before Close: closed.Wait then sees every slot back
			c.Close()
		}()
	}
	for range loops {
		go func() {
			me := &acceptor{}
			for range perLoop {
				if !lim.waitRoom(nil) {
					return
				}
				lim.take(&closeConn{done: closed.Done, twice: &twice}, me, handle)
			}
		}()
	}
	done := make(chan struct{})
	go func() { closed.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("stuck: %d served, %d dropped, %d open, %d queued", served.Load(), lim.Dropped(), lim.Open(), lim.Queued())
	}
	if p := peak.Load(); p > lim.Max {
		t.Fatalf("%d connections served at once, Max %d", p, lim.Max)
	}
	if served.Load()+lim.Dropped() != loops*perLoop || lim.Open() != 0 || lim.Queued() != 0 || twice.Load() != 0 {
		t.Fatalf("%d served + %d dropped of %d; %d open, %d queued, %d closed twice",
			served.Load(), lim.Dropped(), loops*perLoop, lim.Open(), lim.Queued(), twice.Load())
	}
	t.Logf("%d served, %d dropped after the queue timeout", served.Load(), lim.Dropped())
}
