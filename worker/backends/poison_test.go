package backends

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReuseCheckedWhateverTheClock: a connection holding bytes its backend
// sent unasked is never handed out, even to a session whose clock reading
// is older than the release's (sessions read the clock at different
// moments, so a connection's idle time can come out negative).
func TestReuseCheckedWhateverTheClock(t *testing.T) {
	ln, accepted := listenAccepting(t)
	r := NewRegistry(Options{}) // the defaults
	defer r.Close()
	set := r.Update([]Spec{{ClusterID: "c", ID: "b", Addr: netip.MustParseAddrPort(ln.Addr().String()), Weight: 100}}, nil)["c"]
	now := time.Now()
	first, err := set.ConnectAt(context.Background(), now, time.Second, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	defer server.Close()
	server.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"))
	rc, err := first.Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for { // until the stray bytes are in the proxy's socket
		var n int
		rc.Control(func(fd uintptr) {
			var b [1]byte
			n, _, _ = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		})
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stray bytes never arrived")
		}
		<-time.After(time.Millisecond)
	}
	first.ReleaseAt(true, now.Add(time.Millisecond)) // released at a later reading
	c, err := set.ConnectAt(context.Background(), now, time.Second, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(false)
	if c.Reused {
		t.Fatal("the pooled connection holding unasked bytes was handed out unchecked")
	}
}

// listenAccepting listens on a loopback port (closed when the test ends)
// and passes every accepted connection on the channel.
func listenAccepting(t *testing.T) (net.Listener, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return ln, accepted
}
