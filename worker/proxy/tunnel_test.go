package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/splice"
)

// TestTunnelOneWayTrafficNotIdle: a WebSocket tunnel whose bytes flow one
// way only (a server pushing events to a client that sends nothing, or a
// client streaming to a backend that answers at the end) is not idle: the
// front and back timeouts bound the silence of the whole tunnel, as a TCP
// relay's do (worker/tcp), not that of each direction on its own. The
// quiet direction's timeout cut the tunnel while the other still carried
// bytes.
func TestTunnelOneWayTrafficNotIdle(t *testing.T) {
	const (
		timeout = 300 * time.Millisecond
		every   = 50 * time.Millisecond
		n       = 24 // 1.2 s of traffic: four timeouts
	)
	upgrade := "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, err := readHeadFrom(br)
		if err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if strings.HasPrefix(head, "GET /push ") {
			// Server push: the client sends nothing after its request.
			for range n {
				time.Sleep(every)
				if _, err := io.WriteString(c, "e"); err != nil {
					return
				}
			}
			c.(countingConn).Conn.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, br)
			return
		}
		if strings.HasPrefix(head, "GET /quiet ") {
			io.Copy(io.Discard, br) // until the proxy closes
			return
		}
		// Upload: read until the client's half-close, then answer once.
		got, _ := io.Copy(io.Discard, br)
		io.WriteString(c, strings.Repeat("r", int(got)))
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.FrontTimeout, l.BackTimeout = timeout, timeout
	})
	open := func(t *testing.T, path string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, strings.Replace(upgrade, "/ws", path, 1))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		return c, br
	}
	t.Run("server push", func(t *testing.T) {
		_, br := open(t, "/push")
		got, err := io.ReadAll(br)
		if err != nil || len(got) != n {
			t.Fatalf("client got %d of %d pushed bytes (%v): the tunnel was cut while the backend sent", len(got), n, err)
		}
	})
	t.Run("client upload", func(t *testing.T) {
		c, br := open(t, "/upload")
		for range n {
			time.Sleep(every)
			if _, err := io.WriteString(c, "u"); err != nil {
				t.Fatalf("writing: %v", err)
			}
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(br)
		if err != nil || len(got) != n {
			t.Fatalf("client got %d of %d answer bytes (%v): the tunnel was cut while the client sent", len(got), n, err)
		}
	})
	t.Run("quiet tunnel still ends", func(t *testing.T) {
		_, br := open(t, "/quiet")
		start := time.Now()
		if _, err := io.ReadAll(br); err != nil {
			t.Fatalf("reading: %v", err)
		}
		if d := time.Since(start); d > 3*timeout {
			t.Fatalf("a tunnel quiet both ways ended after %v, timeouts %v", d, timeout)
		}
	})
}

// TestUpgradeToAnotherProtocolRefused: a server MUST NOT switch to a
// protocol the client did not name in its Upgrade field (RFC 9110 §7.8):
// a backend's 101 to another protocol is no tunnel the client asked for
// (a WebSocket client handed raw h2c, or any protocol the proxy never saw
// requested) and gets 502; one of the protocols asked for, in any case and
// with or without the version the client named, is tunnelled.
func TestUpgradeToAnotherProtocolRefused(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, err := readHeadFrom(br)
		if err != nil {
			return
		}
		proto := "h2c"
		for _, p := range []string{"WebSocket", "websocket/13", "foo/2"} {
			if strings.Contains(head, "GET /"+p+" ") {
				proto = p
			}
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+proto+"\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br)
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	for _, tc := range []struct{ path, asked, want string }{
		{"/other", "websocket", "HTTP/1.1 502 Bad Gateway"},
		{"/WebSocket", "websocket", "HTTP/1.1 101 Switching Protocols"},
		{"/websocket/13", "websocket", "HTTP/1.1 101 Switching Protocols"},
		{"/foo/2", "bar, foo/1", "HTTP/1.1 502 Bad Gateway"},
		{"/foo/2", "bar, foo/2", "HTTP/1.1 101 Switching Protocols"},
	} {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: a\r\nUpgrade: "+tc.asked+"\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		c.(*net.TCPConn).CloseWrite() // ends the tunnel, if any
		rest, _ := io.ReadAll(br)
		c.Close()
		got := "HTTP/1.1 " + resp.Status + "\r\n" + string(rest)
		if statusOf(got) != tc.want {
			t.Errorf("%s asking %q: got %q, want %s", tc.path, tc.asked, got, tc.want)
		}
	}
}

// TestTLSTunnelHalfClose: over TLS as over TCP, a tunnel passes a
// backend's half-close on as one (close_notify, then FIN), and the client
// may go on sending: what it sends after reaches the backend, whose
// read ends at the client's own half-close. The TLS tunnel closed both
// ways at the backend's end.
func TestTLSTunnelHalfClose(t *testing.T) {
	got := make(chan string, 1)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHeadFrom(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nbye")
		c.(countingConn).Conn.(*net.TCPConn).CloseWrite()
		rest, _ := io.ReadAll(br)
		got <- string(rest)
	})
	conf := testTLSConfig(t, "a.test")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	raw, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(raw, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "bye" {
		t.Fatalf("client read %q, %v; want bye then the backend's end", rest, err)
	}
	if _, err := io.WriteString(c, "late"); err != nil {
		t.Fatalf("writing after the backend's half-close: %v", err)
	}
	c.CloseWrite()
	select {
	case rest := <-got:
		if rest != "late" {
			t.Fatalf("the backend read %q after its half-close, want late", rest)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the backend never saw the client's end")
	}
}

// TestIdleTunnelsHoldNoBuffers: a WebSocket tunnel between plain TCP
// connections holds no pooled buffer nor splice pipe while no byte moves,
// whichever way the last ones went (each way checks one out only while it
// has bytes on hand, worker/relay): idle WebSockets cost what idle
// keep-alive connections do. They held four buffers each (the exchange's
// read, response and output buffers and its state) for their life.
func TestIdleTunnelsHoldNoBuffers(t *testing.T) {
	b := wsEchoBackend(t, "hello")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	const n = 50
	before, pipes := BuffersCheckedOut(), splice.CheckedOut()
	for i := range n {
		// The first bytes of the tunnel ride with the upgrade, both ways.
		c, br := openWebSocket(t, f.addr, "first")
		msg := "hello" + "first" + strings.Repeat("x", 100000)
		io.WriteString(c, msg[10:])
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("tunnel %d: echo: %v", i, err)
		}
	}
	waitFor(t, "no buffer nor pipe checked out by idle tunnels", func() bool {
		return BuffersCheckedOut() == before && splice.CheckedOut() == pipes
	})
}

// TestIdleTLSTunnelsHoldNoBuffers is TestIdleTunnelsHoldNoBuffers over
// TLS: the client way waits for its next record outside crypto/tls, without
// a buffer (waitTLSConn), where it held one for the tunnel's life.
func TestIdleTLSTunnelsHoldNoBuffers(t *testing.T) {
	b := wsEchoBackend(t, "hello")
	conf := testTLSConfig(t, "a.test")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	const n = 20
	before := BuffersCheckedOut()
	type tunnel struct {
		c  *tls.Conn
		br *bufio.Reader
	}
	var tunnels []tunnel
	for i := range n {
		raw, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		c := tls.Client(raw, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nfirst")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("tunnel %d: upgrade: %v %v", i, resp, err)
		}
		msg := "hello" + "first" + strings.Repeat("x", 100000)
		io.WriteString(c, msg[10:])
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("tunnel %d: echo: %v", i, err)
		}
		tunnels = append(tunnels, tunnel{c, br})
	}
	waitFor(t, "no buffer checked out by idle TLS tunnels", func() bool { return BuffersCheckedOut() == before })
	for i, tn := range tunnels { // each still carries bytes both ways after its wait
		io.WriteString(tn.c, "again")
		got := make([]byte, 5)
		if _, err := io.ReadFull(tn.br, got); err != nil || string(got) != "again" {
			t.Fatalf("tunnel %d after its wait: %q, %v", i, got, err)
		}
	}
}
