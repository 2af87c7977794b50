package connlimit

import (
	"io"
	"net"
	"os"
	"sync"
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

func TestServeAdmitsUpToTheLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Limit{Max: 1}
	admitted := make(chan net.Conn, 4)
	done := make(chan error, 1)
	go func() { done <- l.Serve(ln, func() bool { return false }, t.Logf, func(c net.Conn) { admitted <- c }) }()

	first, _ := net.Dial("tcp", ln.Addr().String())
	defer first.Close()
	c := <-admitted
	second, _ := net.Dial("tcp", ln.Addr().String())
	defer second.Close()
	// Over the limit: accepted, then closed without reaching handle.
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection over the limit: %v, want EOF", err)
	}
	c.Close()
	l.Release()
	third, _ := net.Dial("tcp", ln.Addr().String())
	defer third.Close()
	(<-admitted).Close()
	ln.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after close: %v", err)
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
	err := (&Limit{}).Serve(ln, func() bool { return false },
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
