package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// naglingBackend answers every request with a Content-Length body of n
// bytes in two writes, the head and first bytes of the body, then the
// rest, on connections with Nagle's algorithm on: the second write leaves
// only once the first is acknowledged, as with backends that write a head
// and a body apart without TCP_NODELAY (or that wait for an ACK to free
// their send buffer).
func naglingBackend(t *testing.T, first, n int) string {
	t.Helper()
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(n) + "\r\n\r\n")
	body := bytes.Repeat([]byte("x"), n)
	start := append(head, body[:first]...)
	return answeringBackend(t, func(c *net.TCPConn) { c.SetNoDelay(false) }, func(c net.Conn) error {
		if _, err := c.Write(start); err != nil {
			return err
		}
		_, err := c.Write(body[first:])
		return err
	})
}

// TestResponseTailNotHeldByDelayedACK: a response that needs more than one
// read is acknowledged at once (backends.Conn.QuickAck), so that a backend
// waiting for our ACK before it sends the rest is not held for the
// kernel's delayed-ACK timer (40 ms at least on Linux) on every request of
// a keep-alive backend connection; through the copying path (a short
// remainder) and the spliced one.
func TestResponseTailNotHeldByDelayedACK(t *testing.T) {
	for _, tc := range []struct {
		name     string
		first, n int
	}{
		{"copied", 1024, 4096},
		{"spliced", 1024, 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {naglingBackend(t, tc.first, tc.n)}}, nil)
			get := keepAliveGet(t, f.addr, tc.n)
			for range 3 { // the backend connection settles into request-response ("pingpong") mode
				get()
			}
			const rounds = 10
			start := time.Now()
			for range rounds {
				get()
			}
			// Held by a delayed ACK, each request takes 40 ms or more.
			if d := time.Since(start); d >= rounds*40*time.Millisecond/2 {
				t.Fatalf("%d requests took %v: the tails waited for a delayed ACK", rounds, d)
			}
		})
	}
}

// readResponse reads one response head and its Content-Length body of n
// bytes of 'x' from c, byte by byte for the head.
func readResponse(c net.Conn, n int) error {
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			return fmt.Errorf("head %q: %w", head, err)
		}
		head = append(head, b[0])
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) || !bytes.Contains(head, []byte("Content-Length: "+strconv.Itoa(n)+"\r\n")) {
		return fmt.Errorf("head %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	if bytes.Count(body, []byte("x")) != n {
		return fmt.Errorf("body is not %d x", n)
	}
	return nil
}

// TestBodyAsksQuickACKOnlyWhenItWaits: a response body whose bytes are
// all there once its head was read needs no quick ACK (nothing waits for
// our ACK): no setsockopt(2) is made for it, spliced or copied. One whose
// rest comes only after our ACK (a nagling backend) asks for them, once
// per response that waits (most: Nagle lets the rest go at once when the
// first segment was acknowledged already), and is not held by a delayed
// ACK (TestResponseTailNotHeldByDelayedACK times that).
func TestBodyAsksQuickACKOnlyWhenItWaits(t *testing.T) {
	whole := func(n int) string {
		resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(n)+"\r\n\r\n"), bytes.Repeat([]byte("x"), n)...)
		return answeringBackend(t, nil, func(c net.Conn) error {
			_, err := c.Write(resp)
			return err
		})
	}
	const rounds = 20
	// spliced: over spliceMin past the head's read, within a pipe's 64
	// KiB; copied: under spliceMin past it (the nagling backend's first
	// write is half the body).
	const spliceN, copyN = 48 << 10, bufSize + 4<<10
	for _, tc := range []struct {
		name     string
		n        int
		backend  string
		min, max int64 // quick ACKs asked in rounds requests
		spliced  bool
	}{
		// A response arrives in one or two segments on loopback: the
		// head's read may rarely beat the second; never most of them.
		{"spliced/whole", spliceN, whole(spliceN), 0, rounds / 2, true},
		{"spliced/nagling", spliceN, naglingBackend(t, 1024, spliceN), rounds / 2, rounds, true},
		{"copied/whole", copyN, whole(copyN), 0, rounds / 2, false},
		{"copied/nagling", copyN, naglingBackend(t, copyN/2, copyN), rounds / 2, rounds, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {tc.backend}}, nil)
			get := keepAliveGet(t, f.addr, tc.n)
			get() // the backend connection is made and pooled
			before, moved := quickAcks.Load(), spliced.Load()
			for range rounds {
				get()
			}
			if got := quickAcks.Load() - before; got < tc.min || got > tc.max {
				t.Fatalf("quick ACKs asked for %d of %d responses, want %d to %d", got, rounds, tc.min, tc.max)
			}
			moved = spliced.Load() - moved
			if tc.spliced && moved < rounds*int64(tc.n-bufSize) || !tc.spliced && moved != 0 {
				t.Fatalf("%d bytes spliced in %d responses of %d bytes", moved, rounds, tc.n)
			}
		})
	}
}

// keepAliveGet returns a function that sends a GET on one keep-alive
// connection to the proxy at addr and reads its response of n body bytes.
func keepAliveGet(t *testing.T, addr string, n int) func() {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return func() {
		t.Helper()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if err := readResponse(c, n); err != nil {
			t.Fatal(err)
		}
	}
}
