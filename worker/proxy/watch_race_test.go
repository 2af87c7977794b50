package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pauseWatch makes the server's watch stop, in the first round that picks
// a session, between picking it and looking at its client, until release
// is called; rounds receives the number of sessions each later round
// picked. It is installed before the fixture, so that it is removed after
// the server is closed.
func pauseWatch(t *testing.T) (paused <-chan struct{}, release func(), rounds <-chan int) {
	p, r, n := make(chan struct{}), make(chan struct{}), make(chan int, 64)
	var once, released atomic.Bool
	h := func(picked int) {
		if picked > 0 && once.CompareAndSwap(false, true) {
			close(p)
			select {
			case <-r:
			case <-time.After(20 * time.Second):
			}
			return
		}
		select {
		case n <- picked:
		default:
		}
	}
	watchPicked.Store(&h)
	t.Cleanup(func() {
		watchPicked.Store(nil)
		if released.CompareAndSwap(false, true) {
			close(r)
		}
	})
	return p, func() {
		if released.CompareAndSwap(false, true) {
			close(r)
		}
	}, n
}

// waitRound waits for the watch's next round to begin (the one it was
// paused in has ended), or for d when the watch stopped.
func waitRound(rounds <-chan int, d time.Duration) {
	select {
	case <-rounds:
	case <-time.After(d):
	}
}

// The watch picks a session whose exchange is old; by the time it looks
// at its client, the exchange may be another: here a 101 came meanwhile
// and the connection is a tunnel, whose client half-closes as its
// protocol allows. The half-close is no departure of a client waiting for
// its backend, and the tunnel must be left alone: the backend's answer to
// the half-close reaches the client.
func TestWatchLeavesATunnelBegunAfterThePickAlone(t *testing.T) {
	paused, release, rounds := pauseWatch(t)
	answer, reply := make(chan struct{}), make(chan struct{})
	gotEOF := make(chan string, 1)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHeadFrom(br); err != nil {
			return
		}
		select {
		case <-answer:
		case <-time.After(10 * time.Second):
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		in, _ := io.ReadAll(br) // until the client's half-close, relayed
		gotEOF <- string(in)
		select {
		case <-reply:
		case <-time.After(10 * time.Second):
			return
		}
		io.WriteString(c, "bye")
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	select {
	case <-paused: // the exchange, waiting for its 101, is picked
	case <-time.After(5 * time.Second):
		t.Fatal("the watch never picked the waiting exchange")
	}
	close(answer)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(c, "hello")
	c.(*net.TCPConn).CloseWrite()
	if in := <-gotEOF; in != "hello" {
		t.Fatalf("backend got %q before the half-close", in)
	}
	release()
	waitRound(rounds, 2*time.Second)
	close(reply)
	rest, err := io.ReadAll(br)
	if string(rest) != "bye" {
		t.Fatalf("after the half-close the client got %q (%v), want the backend's \"bye\": the watch closed the tunnel", rest, err)
	}
}

// As above, but the exchange picked ended and the client, a keep-alive
// one, sent its next request and half-closed (nothing more to send, the
// response still wanted). The watch must not take that request, whose
// exchange began after the pick and is young, for the one it picked.
func TestWatchLeavesTheNextExchangeAlone(t *testing.T) {
	paused, release, rounds := pauseWatch(t)
	answer := make(chan struct{}, 2)
	got := make(chan string, 2)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			line, _, _ := strings.Cut(head, "\r\n")
			got <- line
			select {
			case <-answer:
			case <-time.After(10 * time.Second):
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
	select {
	case <-paused:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch never picked the waiting exchange")
	}
	answer <- struct{}{}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first: %v %v", resp, err)
	}
	io.ReadAll(resp.Body)
	<-got
	// The paused round outlasts a tick: the next one follows it at once,
	// before the second exchange is old enough to be picked.
	time.Sleep(watchEvery + 100*time.Millisecond)
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	if line := <-got; !strings.Contains(line, "/second") {
		t.Fatalf("backend got %q", line)
	}
	release()
	waitRound(rounds, 2*time.Second)
	answer <- struct{}{}
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("second request after the half-close: %v %v, want its 200: the watch abandoned it for the first's pick", resp, err)
	}
}
