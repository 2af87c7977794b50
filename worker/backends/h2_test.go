package backends

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// h2Server serves HTTP/2 with prior knowledge on loopback and counts the
// connections open now.
func h2Server(t *testing.T) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var open atomic.Int64
	srv := &http2.Server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Add(1)
			go func() {
				srv.ServeConn(c, &http2.ServeConnOpts{Handler: h})
				open.Add(-1)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), &open
}

// TestHTTP2Connect: a cluster with Policy.HTTP2 gets streams of one pooled
// connection; Release closes the stream, never pools it; removing the
// backend closes its HTTP/2 connection.
func TestHTTP2Connect(t *testing.T) {
	addr, open := h2Server(t)
	r := NewRegistry(Options{})
	specs := []Spec{{ClusterID: "c", ID: "b", Addr: addr, Weight: 1}}
	sets := r.Update(specs, map[string]Policy{"c": {HTTP2: true}})
	for i := range 5 {
		c, err := sets["c"].Connect(context.Background(), time.Second, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Stream || !c.Reused {
			t.Fatalf("exchange %d: Stream %v Reused %v, want both", i, c.Stream, c.Reused)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		got, err := io.ReadAll(c)
		if err != nil || len(got) == 0 {
			t.Fatalf("exchange %d: %v %q", i, err, got)
		}
		c.Release(true)
		b := c.Backend
		if b.Idle() != 0 || b.Inflight() != 0 {
			t.Fatalf("after Release: idle %d inflight %d, want 0 and 0", b.Idle(), b.Inflight())
		}
	}
	b := sets["c"].Backends()[0]
	if n := b.H2Conns(); n != 1 {
		t.Fatalf("H2Conns = %d, want 1", n)
	}
	r.Update(nil, nil)
	deadline := time.Now().Add(10 * time.Second)
	for open.Load() != 0 || b.H2Conns() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("backend removed: %d connections still open (pool %d)", open.Load(), b.H2Conns())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
