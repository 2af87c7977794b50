package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
