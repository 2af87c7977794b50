package tcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

// origin is a loopback backend running handle on each connection.
type origin struct {
	addr  netip.AddrPort
	conns atomic.Int64
}

func startOrigin(t *testing.T, handle func(net.Conn)) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return o
}

// echo copies back what it reads, then half-closes at EOF.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// start runs a server for l, whose cluster "c" has backends at addrs.
func start(t testing.TB, l *Listener, sendProxy bool, addrs ...netip.AddrPort) (*Server, string) {
	t.Helper()
	reg := backends.NewRegistry(backends.Options{MaxFailures: 100})
	t.Cleanup(reg.Close)
	var specs []backends.Spec
	for i, a := range addrs {
		specs = append(specs, backends.Spec{ClusterID: "c", ID: string(rune('a' + i)), Addr: a, Weight: 100})
	}
	sets := reg.Update(specs, map[string]backends.Policy{"c": {}})
	if l.Cluster == nil {
		l.Cluster = &Cluster{ID: "c", Backends: sets["c"], SendProxy: sendProxy}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln, l, Options{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if n := srv.Panics.Load(); n != 0 {
			t.Errorf("%d panics", n)
		}
	})
	return srv, ln.Addr().String()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

func TestEchoLarge(t *testing.T) {
	o := startOrigin(t, echo)
	_, addr := start(t, &Listener{}, false, o.addr)
	c := dial(t, addr)
	payload := make([]byte, 16<<20)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.CloseWrite()
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(payload); n != int64(len(payload)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echoed %d bytes, sha256 %x, want %d bytes %x", n, h.Sum(nil), len(payload), want)
	}
}

func TestHalfClose(t *testing.T) {
	// The origin reads everything first, then answers: the answer comes
	// after the client shut its side.
	o := startOrigin(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write(append([]byte("got:"), b...))
	})
	_, addr := start(t, &Listener{}, false, o.addr)
	c := dial(t, addr)
	io.WriteString(c, "hello")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c) // ends at the proxy's EOF
	if err != nil || string(b) != "got:hello" {
		t.Fatalf("got %q, %v", b, err)
	}
}

// headerOrigin records the PROXY header each connection starts with, then
// echoes the rest.
func headerOrigin(t *testing.T) (*origin, chan proxyproto.Header) {
	got := make(chan proxyproto.Header, 4)
	o := startOrigin(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		h, err := proxyproto.Parse(c, 0)
		if err != nil {
			t.Errorf("origin: %v", err)
			return
		}
		got <- h
		echo(c)
	})
	return o, got
}

func TestSendProxy(t *testing.T) {
	o, got := headerOrigin(t)
	_, addr := start(t, &Listener{}, true, o.addr)
	c := dial(t, addr)
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	h := <-got
	want := proxyproto.Header{Command: proxyproto.Proxy,
		Source: c.LocalAddr().(*net.TCPAddr).AddrPort(), Destination: c.RemoteAddr().(*net.TCPAddr).AddrPort()}
	if h != want {
		t.Fatalf("header %+v, want %+v", h, want)
	}
}

func TestExpectProxy(t *testing.T) {
	o, got := headerOrigin(t)
	_, addr := start(t, &Listener{ExpectProxy: true}, true, o.addr)
	src, dst := netip.MustParseAddrPort("[2001:db8::7]:40000"), netip.MustParseAddrPort("[2001:db8::1]:443")

	c := dial(t, addr)
	c.Write(append(proxyproto.Append(nil, src, dst), "ping"...))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if h := <-got; h.Source != src || h.Destination != dst {
		t.Fatalf("relayed header %+v, want %v → %v", h, src, dst)
	}

	t.Run("LOCAL uses the connection's addresses", func(t *testing.T) {
		c := dial(t, addr)
		c.Write(append(proxyproto.AppendLocal(nil), "ping"...))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo %q, %v", buf, err)
		}
		if h := <-got; h.Source != c.LocalAddr().(*net.TCPAddr).AddrPort() {
			t.Fatalf("relayed header %+v, want source %v", h, c.LocalAddr())
		}
	})
	t.Run("no header closes", func(t *testing.T) {
		before := o.conns.Load()
		c := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if b, err := io.ReadAll(c); len(b) != 0 {
			t.Fatalf("got %q, %v", b, err)
		}
		if n := o.conns.Load(); n != before {
			t.Fatalf("the backend was connected")
		}
	})
	t.Run("header must arrive within the front timeout", func(t *testing.T) {
		_, addr := start(t, &Listener{ExpectProxy: true, FrontTimeout: 100 * time.Millisecond}, false, o.addr)
		c := dial(t, addr)
		c.Write(proxyproto.Signature[:5])
		t0 := time.Now()
		if b, _ := io.ReadAll(c); len(b) != 0 || time.Since(t0) > 5*time.Second {
			t.Fatalf("got %q after %v", b, time.Since(t0))
		}
	})
}

func TestRetriesAndRoundRobin(t *testing.T) {
	var hits [2]atomic.Int64
	o1 := startOrigin(t, func(c net.Conn) { hits[0].Add(1); echo(c) })
	o2 := startOrigin(t, func(c net.Conn) { hits[1].Add(1); echo(c) })
	_, addr := start(t, &Listener{}, false, deadAddr(t), o1.addr, o2.addr)
	for i := range 10 {
		c := dial(t, addr)
		io.WriteString(c, "x")
		c.CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "x" {
			t.Fatalf("connection %d: %q, %v", i, b, err)
		}
	}
	if a, b := hits[0].Load(), hits[1].Load(); a+b != 10 || a < 3 || b < 3 {
		t.Fatalf("backends got %d and %d connections", a, b)
	}
}

func TestIdleTimeout(t *testing.T) {
	o := startOrigin(t, echo)
	_, addr := start(t, &Listener{FrontTimeout: 150 * time.Millisecond, BackTimeout: 150 * time.Millisecond}, false, o.addr)
	c := dial(t, addr)
	t0 := time.Now()
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("got %q", b)
	}
	if d := time.Since(t0); d < 100*time.Millisecond || d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}

	t.Run("traffic one way keeps the other alive", func(t *testing.T) {
		// The client sends nothing after its first byte; the origin
		// streams for longer than the front timeout.
		o := startOrigin(t, func(c net.Conn) {
			io.ReadFull(c, make([]byte, 1))
			for range 8 {
				if _, err := io.WriteString(c, "tick"); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
		_, addr := start(t, &Listener{FrontTimeout: 150 * time.Millisecond, BackTimeout: time.Second}, false, o.addr)
		c := dial(t, addr)
		io.WriteString(c, "x")
		b, _ := io.ReadAll(c)
		if string(b) != "ticktickticktickticktickticktick" {
			t.Fatalf("got %q", b)
		}
	})
}

func TestShutdownLetsRelaysFinish(t *testing.T) {
	o := startOrigin(t, echo)
	srv, addr := start(t, &Listener{}, false, o.addr)
	c := dial(t, addr)
	io.WriteString(c, "a")
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	// New connections are refused once the listener is closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The established relay still works.
	io.WriteString(c, "b")
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'b' {
		t.Fatalf("%q, %v", buf, err)
	}
	select {
	case <-done:
		t.Fatal("Shutdown returned with a relay open")
	case <-time.After(50 * time.Millisecond):
	}
	c.CloseWrite()
	io.ReadAll(c)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseEndsRelays(t *testing.T) {
	o := startOrigin(t, echo)
	srv, addr := start(t, &Listener{}, false, o.addr)
	c := dial(t, addr)
	io.WriteString(c, "a")
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := io.ReadAll(c); err != nil {
		t.Logf("read after Close: %v", err)
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions after Close", n)
	}
}

func TestNoCluster(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln, &Listener{Cluster: &Cluster{ID: "none"}}, Options{})
	go srv.Serve()
	defer srv.Close()
	c := dial(t, ln.Addr().String())
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("got %q", b)
	}
}
