package tcp

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestBackendHalfClose: the backend shuts its side first; the client gets
// EOF and can still send, and the backend still receives.
func TestBackendHalfClose(t *testing.T) {
	got := make(chan string, 1)
	o := startOrigin(t, func(c net.Conn) {
		io.WriteString(c, "bye")
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	_, addr := start(t, &Listener{}, false, o.addr)
	c := dial(t, addr)
	if b, err := io.ReadAll(c); err != nil || string(b) != "bye" {
		t.Fatalf("client got %q, %v", b, err)
	}
	if _, err := io.WriteString(c, "after your EOF"); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	if s := recv(t, got); s != "after your EOF" {
		t.Fatalf("backend got %q", s)
	}
}

// TestClientResetClosesBackend: a client that resets mid-stream has its
// backend connection closed at once, not at a timeout.
func TestClientResetClosesBackend(t *testing.T) {
	ended := make(chan time.Time, 1)
	o := startOrigin(t, func(c net.Conn) {
		io.WriteString(c, "hello") // mid-stream: data both ways
		io.Copy(io.Discard, c)
		ended <- time.Now()
	})
	_, addr := start(t, &Listener{FrontTimeout: 30 * time.Second, BackTimeout: 30 * time.Second}, false, o.addr)
	c := dial(t, addr)
	io.WriteString(c, "some bytes")
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	c.SetLinger(0)
	t0 := time.Now()
	c.Close() // RST
	if d := recv(t, ended).Sub(t0); d > 5*time.Second {
		t.Fatalf("backend closed %v after the client's reset", d)
	}
}

// TestBackendResetClosesClient is the same the other way.
func TestBackendResetClosesClient(t *testing.T) {
	o := startOrigin(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 1))
		c.(*net.TCPConn).SetLinger(0)
	}) // closed on return: RST
	_, addr := start(t, &Listener{FrontTimeout: 30 * time.Second, BackTimeout: 30 * time.Second}, false, o.addr)
	c := dial(t, addr)
	io.WriteString(c, "x")
	closedWithin(t, c, time.Now(), 2*time.Second)
}
