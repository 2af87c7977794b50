package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

// tcpConnOf returns the TCP connection under an origin's connection.
func tcpConnOf(c net.Conn) *net.TCPConn {
	if cc, ok := c.(countingConn); ok {
		c = cc.Conn
	}
	return c.(*net.TCPConn)
}

// blackholeAddr returns a loopback address whose connects never complete:
// a socket listening with a backlog of 0, never accepting, its accept queue
// filled by one connection, so that Linux drops every further SYN.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	filler, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	return addr
}

// refusingAddr returns a loopback address nothing listens on.
func refusingAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
}

// closedAfter waits until the proxy closes c (EOF or reset, with no data)
// and returns the time since t0; it fails after limit.
func closedAfter(t *testing.T, c net.Conn, t0 time.Time, limit time.Duration) time.Duration {
	t.Helper()
	c.SetReadDeadline(t0.Add(limit))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("still open %v after the start", limit)
	}
	if len(b) != 0 {
		t.Fatalf("got %q before the close", b)
	}
	return time.Since(t0)
}

func dialReview(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// echoOK sends one byte on a new connection, half-closes, and returns what
// comes back until the proxy's EOF (a named origin's name).
func echoOK(t *testing.T, addr string) string {
	t.Helper()
	c := dialReview(t, addr)
	io.WriteString(c, "?")
	c.CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	return string(b)
}

// namedOrigin answers each connection's first byte with its name, then
// echoes.
func namedOrigin(t *testing.T, name string) *rawOrigin {
	return startRawOrigin(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			return
		}
		io.WriteString(c, name)
		io.Copy(c, c)
		tcpConnOf(c).CloseWrite()
	})
}

// workerFDs returns the number of open descriptors of the only worker.
func workerFDs(t *testing.T, sock string) int {
	t.Helper()
	pids := workerPIDs(t, sock)
	ents, err := os.ReadDir(filepath.Join("/proc", fmt.Sprint(pids[0]), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestTCPReviewDataPlane checks the TCP proxy against its contract with one
// worker: the global and per-listener timeouts (idle client, idle backend,
// connect), retries and round robin over dead backends, backends added and
// removed at runtime, PROXY protocol v2 in (split, slow, malformed, LOCAL,
// IPv6, UNSPEC, TLVs, oversized) and out (IPv4 and IPv6 clients, relayed
// through an expecting listener), half-close both ways, resets; and that
// the worker holds no more descriptors once the connections are gone.
func TestTCPReviewDataPlane(t *testing.T) {
	dir := t.TempDir()
	echo := startRawOrigin(t, tcpEcho)
	silent := startRawOrigin(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, c)
	})
	one, two := namedOrigin(t, "1"), namedOrigin(t, "2")
	rtA, rtB := namedOrigin(t, "A"), namedOrigin(t, "B")
	rawHeaders := make(chan []byte, 64)
	headerOrigin := startRawOrigin(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		_, raw, err := proxyproto.Read(c, 0, nil)
		if err != nil {
			t.Errorf("origin: reading the PROXY header: %v", err)
			return
		}
		rawHeaders <- raw
		tcpEcho(c)
	})
	halfGot := make(chan string, 1)
	halfOrigin := startRawOrigin(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "bye")
		tcpConnOf(c).CloseWrite()
		b, _ := io.ReadAll(c)
		halfGot <- string(b)
	})
	resetSeen := make(chan time.Time, 1)
	resetOrigin := startRawOrigin(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "hello")
		io.Copy(io.Discard, c)
		resetSeen <- time.Now()
	})
	hole := blackholeAddr(t)

	port := func() string { return fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)) }
	front, back, conn := port(), port(), port()              // global timeouts
	frontOwn, backOwn, connOwn := port(), port(), port()     // the listener's own
	rr, allDead, rt, plain := port(), port(), port(), port() // backends
	expect, expectLong, send := port(), port(), port()       // PROXY in, out
	send6 := fmt.Sprintf("[::1]:%d", sozutest.FreePort(t))   // PROXY out, IPv6 client
	half, reset := port(), port()                            // half-close, reset
	sock := filepath.Join(dir, "sozu.sock")
	listener := func(addr, extra string) string {
		return fmt.Sprintf("\n[[listeners]]\nprotocol = \"tcp\"\naddress = %q\n%s\n", addr, extra)
	}
	cluster := func(id, front, extra string, backends ...string) string {
		var bs []string
		for i, b := range backends {
			bs = append(bs, fmt.Sprintf("{ address = %q, backend_id = \"%s-%d\" }", b, id, i))
		}
		return fmt.Sprintf("\n[clusters.%s]\nprotocol = \"tcp\"\n%s\nfrontends = [ { address = %q } ]\nbackends = [ %s ]\n",
			id, extra, front, strings.Join(bs, ", "))
	}
	long := "front_timeout = 30\nback_timeout = 30"
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
activate_listeners = true
front_timeout = 1
back_timeout = 1
connect_timeout = 1
`, sock) +
		listener(front, "back_timeout = 30") +
		listener(back, "front_timeout = 30") +
		listener(conn, long) +
		listener(frontOwn, "front_timeout = 2\nback_timeout = 30") +
		listener(backOwn, "front_timeout = 30\nback_timeout = 2") +
		listener(connOwn, long+"\nconnect_timeout = 2") +
		listener(rr, long) + listener(allDead, "front_timeout = 30\nback_timeout = 30\nconnect_timeout = 30") + listener(rt, long) + listener(plain, long) +
		listener(expect, "expect_proxy = true") + listener(expectLong, "expect_proxy = true\n"+long) + listener(send, long) + listener(send6, long) +
		listener(half, long) + listener(reset, long) +
		cluster("front", front, "", echo.addr) +
		cluster("back", back, "", silent.addr) +
		cluster("conn", conn, "", hole) +
		cluster("frontown", frontOwn, "", echo.addr) +
		cluster("backown", backOwn, "", silent.addr) +
		cluster("connown", connOwn, "", hole) +
		cluster("rr", rr, "", one.addr, refusingAddr(t), two.addr) +
		cluster("alldead", allDead, "", refusingAddr(t), refusingAddr(t)) +
		cluster("rt", rt, "", rtA.addr) +
		cluster("plain", plain, "", echo.addr) +
		cluster("relay", expect, "send_proxy = true", headerOrigin.addr) +
		cluster("relaylong", expectLong, "send_proxy = true", headerOrigin.addr) +
		cluster("send", send, "send_proxy = true", headerOrigin.addr) +
		cluster("send6", send6, "send_proxy = true", headerOrigin.addr) +
		cluster("half", half, "", halfOrigin.addr) +
		cluster("reset", reset, "", resetOrigin.addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := sozutest.Start(t, dir, cfgPath, sock)
	sozutest.WaitFor(t, 20*time.Second, "the TCP listener echoes", func() bool {
		c, err := net.DialTimeout("tcp", plain, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		io.WriteString(c, "x")
		_, err = io.ReadFull(c, make([]byte, 1))
		return err == nil
	})
	baseFDs := workerFDs(t, sock)
	firstWorker := workerPIDs(t, sock)[0]

	// Each timeout fires once, measured from the last byte; they run side
	// by side. A global value applies where the listener sets none; the
	// listener's own value wins over the global one (2 s, not 1 s).
	t.Run("timeouts", func(t *testing.T) {
		idle := func(addr string, want time.Duration, talk bool) func(*testing.T) {
			return func(t *testing.T) {
				t.Parallel()
				c := dialReview(t, addr)
				if talk {
					io.WriteString(c, "x")
					if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
						t.Fatal(err)
					}
				}
				d := closedAfter(t, c, time.Now(), want+8*time.Second)
				if d < want-want/8 || d > want+3*time.Second {
					t.Fatalf("closed after %v, timeout %v", d, want)
				}
			}
		}
		t.Run("front_timeout global", idle(front, time.Second, true))
		t.Run("front_timeout of the listener", idle(frontOwn, 2*time.Second, true))
		t.Run("back_timeout global", idle(back, time.Second, false))
		t.Run("back_timeout of the listener", idle(backOwn, 2*time.Second, false))
		t.Run("connect_timeout global", idle(conn, time.Second, false))
		t.Run("connect_timeout of the listener", idle(connOwn, 2*time.Second, false))
		t.Run("traffic keeps a connection alive", func(t *testing.T) {
			t.Parallel()
			c := dialReview(t, front) // front_timeout 1 s
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); <-tick.C {
				io.WriteString(c, "x")
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					t.Fatalf("closed while busy: %v", err)
				}
			}
		})
		t.Run("PROXY header never completed", func(t *testing.T) {
			t.Parallel()
			c := dialReview(t, expect) // front_timeout 1 s
			t0 := time.Now()
			hdr := proxyproto.Append(nil, netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:2"))
			done := make(chan time.Duration, 1)
			go func() {
				c.SetReadDeadline(t0.Add(10 * time.Second))
				io.ReadAll(c)
				done <- time.Since(t0)
			}()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case d := <-done:
					if d < 900*time.Millisecond || d > 4*time.Second {
						t.Fatalf("a trickled header was cut after %v, front timeout 1 s", d)
					}
					return
				case <-tick.C:
					if i < len(hdr)-1 {
						c.Write(hdr[i : i+1])
					}
				}
			}
		})
	})

	t.Run("round robin skips a dead backend", func(t *testing.T) {
		seen := map[string]int{}
		for range 12 {
			seen[echoOK(t, rr)]++
		}
		if seen["1"]+seen["2"] != 12 || seen["1"] < 5 || seen["2"] < 5 {
			t.Fatalf("answers: %v", seen)
		}
	})

	t.Run("all backends dead closes at once", func(t *testing.T) {
		for range 3 {
			c := dialReview(t, allDead)
			if d := closedAfter(t, c, time.Now(), 10*time.Second); d > 3*time.Second {
				t.Fatalf("closed after %v (connect_timeout 30 s)", d)
			}
		}
	})

	t.Run("backends added and removed at runtime", func(t *testing.T) {
		cl := sozutest.Dial(t, sock)
		ap := func(s string) *command.SocketAddress { return command.NewSocketAddress(netip.MustParseAddrPort(s)) }
		cl.MustOK(t, &command.Request{RequestType: &command.Request_AddBackend{AddBackend: &command.AddBackend{
			ClusterId: proto.String("rt"), BackendId: proto.String("rt-B"), Address: ap(rtB.addr)}}})
		seen := map[string]int{}
		for range 6 {
			seen[echoOK(t, rt)]++
		}
		if seen["A"] != 3 || seen["B"] != 3 {
			t.Fatalf("after adding B: %v", seen)
		}
		// A relay established to A survives A's removal (upstream lets a
		// removed backend's connections drain); new ones go to B only.
		var toA *net.TCPConn
		for toA == nil {
			c := dialReview(t, rt)
			io.WriteString(c, "?")
			b := make([]byte, 1)
			if _, err := io.ReadFull(c, b); err != nil {
				t.Fatal(err)
			}
			if b[0] == 'A' {
				toA = c
			}
		}
		cl.MustOK(t, &command.Request{RequestType: &command.Request_RemoveBackend{RemoveBackend: &command.RemoveBackend{
			ClusterId: proto.String("rt"), BackendId: proto.String("rt-0"), Address: ap(rtA.addr)}}})
		for range 4 {
			if got := echoOK(t, rt); got != "B" {
				t.Fatalf("after removing A: %q", got)
			}
		}
		io.WriteString(toA, "still here")
		b := make([]byte, len("still here"))
		if _, err := io.ReadFull(toA, b); err != nil || string(b) != "still here" {
			t.Fatalf("the relay to the removed backend: %q, %v", b, err)
		}
	})

	t.Run("PROXY v2 in", func(t *testing.T) {
		const sig = "0d0a0d0a000d0a515549540a"
		hx := func(s string) []byte {
			b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		// The expecting listener relays (send_proxy): the origin gets the
		// client's header byte for byte, TLVs included.
		for _, tt := range []struct{ name, hdr string }{
			{"inet", sig + "21 11 000c c0000201 c6336407 c738 01bb"},
			{"inet6", sig + "21 21 0024 20010db8000000000000000000000007 20010db8000000000000000000000001 9c40 01bb"},
			{"TLVs", sig + "21 11 001c c0000201 c6336407 c738 01bb 04 0000 05 0002 6869 ea 0005 7670636531"},
			{"LOCAL", sig + "20 00 0000"},
			{"PROXY AF_UNSPEC", sig + "21 00 0000"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c := dialReview(t, expectLong)
				want := hx(tt.hdr)
				c.Write(append(append([]byte(nil), want...), "ping"...))
				c.CloseWrite()
				if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
					t.Fatalf("echo %q, %v", b, err)
				}
				if got := <-rawHeaders; !bytes.Equal(got, want) {
					t.Fatalf("origin got %x\nwant        %x", got, want)
				}
			})
		}
		t.Run("split byte by byte", func(t *testing.T) {
			c := dialReview(t, expectLong)
			want := hx(sig + "21 11 000c c0000201 c6336407 c738 01bb")
			for _, b := range append(append([]byte(nil), want...), "ping"...) {
				c.Write([]byte{b})
			}
			c.CloseWrite()
			if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
				t.Fatalf("echo %q, %v", b, err)
			}
			if got := <-rawHeaders; !bytes.Equal(got, want) {
				t.Fatalf("origin got %x", got)
			}
		})
		before := headerOrigin.conns.Load()
		for _, tt := range []struct{ name, hdr string }{
			{"v1 header", hex.EncodeToString([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\n"))},
			{"short v1 header", hex.EncodeToString([]byte("PROXY UNKNOWN\r\n"))},
			{"no header", hex.EncodeToString([]byte("ping"))},
			{"version 1", sig + "11 11 000c c0000201 c6336407 c738 01bb"},
			{"unknown family", sig + "21 44 0000"},
			{"truncated TLV", sig + "21 11 0010 c0000201 c6336407 c738 01bb 05 0002 68"},
			{"oversized", sig + "21 11 ffff c0000201"},
		} {
			t.Run("refused: "+tt.name, func(t *testing.T) {
				c := dialReview(t, expectLong)
				c.Write(hx(tt.hdr))
				if d := closedAfter(t, c, time.Now(), 15*time.Second); d > 5*time.Second {
					t.Fatalf("closed after %v (front timeout 30 s)", d)
				}
			})
		}
		if n := headerOrigin.conns.Load(); n != before {
			t.Fatalf("refused headers reached the backend (%d connections)", n-before)
		}
	})

	t.Run("PROXY v2 out", func(t *testing.T) {
		for _, addr := range []string{send, send6} {
			c := dialReview(t, addr)
			io.WriteString(c, "ping")
			c.CloseWrite()
			if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
				t.Fatalf("%s: echo %q, %v", addr, b, err)
			}
			h, _, err := proxyproto.ParseBytes(<-rawHeaders, 0)
			src, dst := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
			if err != nil || h.Command != proxyproto.Proxy || h.Source != src || h.Destination != dst {
				t.Fatalf("%s: origin got %+v, %v; want PROXY %v → %v", addr, h, err, src, dst)
			}
		}
	})

	t.Run("half-close by the backend", func(t *testing.T) {
		c := dialReview(t, half)
		if b, err := io.ReadAll(c); err != nil || string(b) != "bye" {
			t.Fatalf("client got %q, %v", b, err)
		}
		io.WriteString(c, "after your EOF")
		c.CloseWrite()
		select {
		case s := <-halfGot:
			if s != "after your EOF" {
				t.Fatalf("backend got %q", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the backend did not get the client's bytes and EOF")
		}
	})

	t.Run("client reset closes the backend connection", func(t *testing.T) {
		c := dialReview(t, reset)
		io.WriteString(c, "data")
		if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
			t.Fatal(err)
		}
		c.SetLinger(0)
		t0 := time.Now()
		c.Close()
		select {
		case at := <-resetSeen:
			if d := at.Sub(t0); d > 5*time.Second {
				t.Fatalf("backend closed %v after the reset", d)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the backend connection outlived the client's reset (timeouts are 30 s)")
		}
	})

	// Many connections through every failure path at once; afterwards the
	// worker holds no more descriptors than before.
	t.Run("no descriptor leak", func(t *testing.T) {
		var wg sync.WaitGroup
		run := func(addr string, n int, f func(*net.TCPConn)) {
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(15 * time.Second))
					f(c.(*net.TCPConn))
				}()
			}
		}
		drain := func(c *net.TCPConn) { io.ReadAll(c) }
		run(front, 10, drain)                                                     // idle client
		run(back, 10, drain)                                                      // idle backend
		run(conn, 10, drain)                                                      // connect timeout
		run(allDead, 10, drain)                                                   // refused
		run(expect, 10, func(c *net.TCPConn) { c.Write([]byte{0x0d}); drain(c) }) // slowloris
		run(expect, 10, func(c *net.TCPConn) { io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); drain(c) })
		run(plain, 10, func(c *net.TCPConn) { // reset mid-stream
			io.WriteString(c, "x")
			io.ReadFull(c, make([]byte, 1))
			c.SetLinger(0)
		})
		run(plain, 10, func(c *net.TCPConn) { io.WriteString(c, "x"); c.CloseWrite(); drain(c) })
		wg.Wait()
		sozutest.WaitFor(t, 10*time.Second, "the worker's descriptors to come back to their count", func() bool {
			return workerFDs(t, sock) <= baseFDs
		})
	})

	if !p.Alive() {
		t.Fatalf("sozu died:\n%s", p.Out)
	}
	// Resets, timeouts and half-closes are all served by the first worker,
	// inside its seccomp filter: a forbidden system call (SIGSYS) would
	// have replaced it, and the descriptor count above would not show it.
	if pids := workerPIDs(t, sock); len(pids) != 1 || pids[0] != firstWorker {
		t.Fatalf("worker %d was replaced by %v:\n%s", firstWorker, pids, p.Out)
	}
}

// TestTCPReviewMaxConnections: max_connections = 2 is one cap for the
// HTTP and TCP listeners. With an HTTP and a TCP connection held, a third
// TCP connection is neither closed nor reset: it waits, and is relayed as
// soon as the HTTP connection closes. A connection that waits longer than
// accept_queue_timeout is closed without reaching the backend.
func TestTCPReviewMaxConnections(t *testing.T) {
	dir := t.TempDir()
	echo := startRawOrigin(t, tcpEcho)
	web := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "web") }))
	addr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	const queueTimeout = 3 * time.Second
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
activate_listeners = true
max_connections = 2
accept_queue_timeout = %d

[[listeners]]
protocol = "tcp"
address = %[3]q

[[listeners]]
protocol = "http"
address = %[5]q

[clusters.echo]
protocol = "tcp"
frontends = [ { address = %[3]q } ]
backends = [ { address = %[4]q } ]

[clusters.web]
protocol = "http"
frontends = [ { address = %[5]q, hostname = "web.test" } ]
backends = [ { address = %[6]q } ]
`, sock, int(queueTimeout/time.Second), addr, echo.addr, httpAddr, web.addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := sozutest.Start(t, dir, cfgPath, sock)
	ping := func(c net.Conn) error {
		if _, err := io.WriteString(c, "x"); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, 1))
		return err
	}
	get := func(c net.Conn) error {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.test\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && string(b) != "web" {
			err = fmt.Errorf("body %q", b)
		}
		return err
	}
	var held []net.Conn // held[0]: HTTP keep-alive, held[1]: TCP
	for _, l := range []struct {
		addr  string
		query func(net.Conn) error
	}{{httpAddr, get}, {addr, ping}} {
		sozutest.WaitFor(t, 20*time.Second, "the listener on "+l.addr+" to answer", func() bool {
			c, err := net.DialTimeout("tcp", l.addr, time.Second)
			if err != nil {
				return false
			}
			c.SetDeadline(time.Now().Add(time.Second))
			if l.query(c) != nil {
				c.Close()
				return false
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			held = append(held, c)
			return true
		})
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	before := echo.conns.Load()

	// At the cap: the third connection waits, neither closed nor reset.
	third := dialReview(t, addr)
	io.WriteString(third, "x")
	third.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := third.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("over max_connections: %v, want the connection left waiting", err)
	}
	if n := echo.conns.Load(); n != before {
		t.Fatalf("a connection over the limit reached the backend (%d)", n-before)
	}
	// A slot freed on the HTTP listener serves the TCP connection at once.
	t0 := time.Now()
	held[0].Close()
	third.SetReadDeadline(t0.Add(2 * time.Second))
	if _, err := io.ReadFull(third, make([]byte, 1)); err != nil {
		t.Fatalf("the waiting connection after a slot freed: %v", err)
	}
	t.Logf("relayed %v after the HTTP connection closed", time.Since(t0))
	held[0] = third

	// Waiting longer than accept_queue_timeout: closed, never relayed.
	late := dialReview(t, addr)
	io.WriteString(late, "x")
	if d := closedAfter(t, late, time.Now(), 4*queueTimeout); d < queueTimeout-100*time.Millisecond {
		t.Fatalf("waiting connection closed after %v, before accept_queue_timeout (%v)", d, queueTimeout)
	}
	if n := echo.conns.Load(); n != before+1 {
		t.Fatalf("the backend got %d connections since the cap was reached, want 1", n-before)
	}
	for _, c := range held {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := ping(c); err != nil {
			t.Fatalf("a connection kept: %v", err)
		}
	}
	if !p.Alive() {
		t.Fatalf("sozu died:\n%s", p.Out)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
