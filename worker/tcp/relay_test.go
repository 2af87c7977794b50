package tcp

import (
	"errors"
	"io"
	"net"
	"syscall"
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
// backend connection closed at once, not at a timeout, and with a reset:
// a FIN would tell the backend the stream ended whole.
func TestClientResetClosesBackend(t *testing.T) {
	ended := make(chan time.Time, 1)
	endErr := make(chan error, 1)
	o := startOrigin(t, func(c net.Conn) {
		io.WriteString(c, "hello") // mid-stream: data both ways
		_, err := io.Copy(io.Discard, c)
		ended <- time.Now()
		endErr <- err
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
	if err := recv(t, endErr); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the backend's read ended with %v, want a reset", err)
	}
}

// TestBackendResetClosesClient is the same the other way: the bytes sent
// before the reset arrive, then the client reads a reset, not an end.
func TestBackendResetClosesClient(t *testing.T) {
	o := startOrigin(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 1))
		io.WriteString(c, "partial")
		c.(*net.TCPConn).SetLinger(0)
	}) // closed on return: RST
	_, addr := start(t, &Listener{FrontTimeout: 30 * time.Second, BackTimeout: 30 * time.Second}, false, o.addr)
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "x")
	got, err := io.ReadAll(c)
	if string(got) != "partial" || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the client read %q then %v, want \"partial\" then a reset", got, err)
	}
}
