package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/proxyproto"
)

// holdConn is a client's TCP connection whose writes, while hold is set,
// are kept in held instead of sent: the test then sends the TLS records
// they make in pieces of its choosing.
type holdConn struct {
	*net.TCPConn
	mu   sync.Mutex
	hold bool
	held []byte
}

func (c *holdConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.TCPConn.Write(p)
}

// take stops holding and returns what was held.
func (c *holdConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.held
	c.hold, c.held = false, nil
	return b
}

// idleTLSClient dials the fixture over TLS (maxVers 0: the default) and
// makes one request, after which the connection is idle.
func idleTLSClient(t *testing.T, f *fixture, maxVers uint16, req, resp []byte) (*tls.Conn, *holdConn) {
	t.Helper()
	raw, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	hc := &holdConn{TCPConn: raw.(*net.TCPConn)}
	hc.SetNoDelay(true)
	c := tls.Client(hc, &tls.Config{ServerName: "bench.example.com", InsecureSkipVerify: true, MaxVersion: maxVers})
	t.Cleanup(func() { c.Close() })
	roundTripFixed(t, c, req, resp, 1)
	waitFor(t, "the connection idle, its buffers given back", func() bool { return BuffersCheckedOut() == 0 })
	return c, hc
}

// sealed returns the TLS records c makes of p, unsent.
func sealed(t *testing.T, c *tls.Conn, hc *holdConn, p []byte) []byte {
	t.Helper()
	hc.mu.Lock()
	hc.hold = true
	hc.mu.Unlock()
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
	return hc.take()
}

// TestIdleTLSPartialRecord: a client that sends part of a TLS record and
// then goes silent, ends its connection, or resets it, while its
// connection is idle: the session ends (at the front timeout for the
// silent one, with no 408: no request byte came), and gives back every
// pooled buffer, the pending bytes of waitTLS included (a record that
// does not decrypt, followed by more bytes than crypto/tls read).
func TestIdleTLSPartialRecord(t *testing.T) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello world!\n")
	req := []byte("GET / HTTP/1.1\r\nHost: bench.example.com\r\n\r\n")
	addr := fixedBackend(t, resp)
	conf := testTLSConfig(t, "bench.example.com")
	for _, end := range []string{"silence", "eof", "reset", "close_notify", "request_close_notify", "garbage"} {
		for _, vers := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(fmt.Sprintf("%s/%x", end, vers), func(t *testing.T) {
				front := 10 * time.Second
				if end == "silence" {
					front = 500 * time.Millisecond
				}
				f := newFixture(t, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) {
					l.TLS = conf
					l.FrontTimeout = front
				})
				c, hc := idleTLSClient(t, f, vers, req, resp)
				var rec, rest []byte
				switch end {
				case "close_notify":
					// Its close_notify alone, in two pieces.
					hc.mu.Lock()
					hc.hold = true
					hc.mu.Unlock()
					c.CloseWrite()
					hc.SetWriteDeadline(time.Time{}) // CloseWrite left it at its end
					alert := hc.take()
					rec, rest = alert[:len(alert)/2], alert[len(alert)/2:]
				case "request_close_notify":
					// A request and its close_notify in one piece.
					rec = sealed(t, c, hc, req)
					hc.mu.Lock()
					hc.hold = true
					hc.mu.Unlock()
					c.CloseWrite()
					hc.SetWriteDeadline(time.Time{}) // CloseWrite left it at its end
					rec = append(rec, hc.take()...)
				case "garbage":
					// A record crypto/tls cannot open, and more bytes than
					// it takes before failing: some stay with waitTLS.
					rec = append([]byte{23, 3, 3, 0x40, 0}, bytes.Repeat([]byte{0x5a}, 48<<10)...)
				default:
					rec = sealed(t, c, hc, req)
					rec = rec[:len(rec)/2]
				}
				if _, err := hc.TCPConn.Write(rec); err != nil {
					t.Fatal(err)
				}
				switch end {
				case "eof":
					hc.CloseWrite()
				case "reset":
					hc.SetLinger(0)
					hc.TCPConn.Close()
				case "close_notify":
					if _, err := hc.TCPConn.Write(rest); err != nil {
						t.Fatal(err)
					}
				}
				waitFor(t, "the session to end", func() bool { return f.srv.Sessions() == 0 })
				waitFor(t, "no buffer checked out", func() bool { return BuffersCheckedOut() == 0 })
				if end == "reset" {
					return
				}
				hc.SetReadDeadline(time.Now().Add(5 * time.Second))
				got, _ := io.ReadAll(c)
				if end == "request_close_notify" {
					if bytes.Count(got, []byte("hello world!")) != 1 {
						t.Fatalf("after a request and a close_notify: %q, want its answer", got)
					}
				} else if len(got) != 0 {
					t.Fatalf("after %s: %q, want nothing", end, got)
				}
			})
		}
	}
}

// TestIdleTLSShutdown: a soft stop wakes a TLS session idle in waitTLS
// (its read deadline moved to drainIdleGrace): the connection closes
// within the grace, not at the front timeout; and a request it sends
// meanwhile, in pieces, is answered with Connection: close.
func TestIdleTLSShutdown(t *testing.T) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello world!\n")
	req := []byte("GET / HTTP/1.1\r\nHost: bench.example.com\r\n\r\n")
	addr := fixedBackend(t, resp)
	conf := testTLSConfig(t, "bench.example.com")
	for _, last := range []bool{false, true} {
		t.Run(fmt.Sprintf("last_request=%v", last), func(t *testing.T) {
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) { l.TLS = conf })
			c, hc := idleTLSClient(t, f, 0, req, resp)
			// A piece of a record: the session is parked in waitTLS
			// with crypto/tls holding the record's start.
			rec := sealed(t, c, hc, req)
			if _, err := hc.TCPConn.Write(rec[:3]); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shut := make(chan error, 1)
			go func() { shut <- f.srv.Shutdown(ctx) }()
			waitFor(t, "the server to drain", func() bool { return f.srv.draining.Load() })
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if last {
				if _, err := hc.TCPConn.Write(rec[3:]); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(c)
				if err != nil && !errors.Is(err, io.EOF) {
					t.Fatalf("reading the last answer: %v (got %q)", err, got)
				}
				if !bytes.Contains(got, []byte("hello world!")) || !bytes.Contains(bytes.ToLower(got), []byte("connection: close")) {
					t.Fatalf("last request during the drain got %q, want its answer with Connection: close", got)
				}
			} else if got, _ := io.ReadAll(c); len(got) != 0 {
				t.Fatalf("idle connection during the drain got %q", got)
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v after %v", err, time.Since(start))
			}
			if d := time.Since(start); d > drainIdleGrace+2*time.Second {
				t.Fatalf("the idle TLS connection closed %v after the soft stop, want within %v", d, drainIdleGrace)
			}
			waitFor(t, "no buffer checked out", func() bool { return BuffersCheckedOut() == 0 })
		})
	}
}

// TestIdleTLSHardClose: a hard stop (Server.Close) closes a TLS session
// parked in waitTLS with part of a record read: Close returns, the
// client sees its connection end, and no pooled buffer stays out.
func TestIdleTLSHardClose(t *testing.T) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello world!\n")
	req := []byte("GET / HTTP/1.1\r\nHost: bench.example.com\r\n\r\n")
	conf := testTLSConfig(t, "bench.example.com")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {fixedBackend(t, resp)}}, func(l *Listener) { l.TLS = conf })
	c, hc := idleTLSClient(t, f, 0, req, resp)
	rec := sealed(t, c, hc, req)
	if _, err := hc.TCPConn.Write(rec[:len(rec)-1]); err != nil {
		t.Fatal(err)
	}
	closeWithin(t, f, 10*time.Second)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(c); len(got) != 0 || (err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset")) {
		t.Fatalf("after a hard stop: %q, %v", got, err)
	}
	waitFor(t, "no buffer checked out", func() bool { return BuffersCheckedOut() == 0 })
}

// TestIdleTLSBodyAfterWait: a request whose head and body reach an idle
// TLS session in one write, more than waitTLS's first read holds, and a
// request pipelined after it: the backend gets every body byte in order
// (the bytes waitTLS kept go to crypto/tls first, whether the session or
// the body copier reads them), and the pipelined request is served.
func TestIdleTLSBodyAfterWait(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		fmt.Fprintf(w, "got %d", len(body))
	})
	conf := testTLSConfig(t, "bench.example.com")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	c, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "bench.example.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var want []string
	for i, size := range []int{10, 100 << 10, 1, 40 << 10, 0} {
		body := make([]byte, size)
		for j := range body {
			body[j] = byte('a' + (i*7+j*13)%26)
		}
		var msg []byte
		msg = fmt.Appendf(msg, "POST /%d HTTP/1.1\r\nHost: bench.example.com\r\nContent-Length: %d\r\n\r\n", i, size)
		msg = append(msg, body...)
		// The next one pipelined after it, without a body.
		msg = fmt.Appendf(msg, "GET /p%d HTTP/1.1\r\nHost: bench.example.com\r\nContent-Length: 0\r\n\r\n", i)
		want = append(want, string(body), "")
		waitFor(t, "the connection idle", func() bool { return BuffersCheckedOut() == 0 })
		go c.Write(msg)
		var got []byte
		buf := make([]byte, 4096)
		for strings.Count(string(got), "got ") < 2 {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("request %d: %v after %q", i, err, got)
			}
		}
		if !strings.Contains(string(got), fmt.Sprintf("got %d", size)) || !strings.HasSuffix(string(got), "got 0") {
			t.Fatalf("request %d (%d bytes): %q", i, size, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != len(want) {
		t.Fatalf("%d requests reached the backend, want %d", len(bodies), len(want))
	}
	for i := range want {
		if bodies[i] != want[i] {
			t.Fatalf("body %d: %d bytes, differs from the %d sent", i, len(bodies[i]), len(want[i]))
		}
	}
}

// TestIdleTLSKeyUpdate: a TLS 1.3 client (openssl s_client) that updates
// its keys while its connection is idle, asking for ours too (K) or not
// (k): crypto/tls handles the KeyUpdate within waitTLS's no-wait read
// (answering with its own when asked), and the requests that follow,
// under the new keys, are served.
func TestIdleTLSKeyUpdate(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := fixedBackend(t, resp)
	conf := testTLSConfig(t, "bench.example.com")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) { l.TLS = conf })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "s_client", "-connect", f.addr, "-servername", "bench.example.com", "-tls1_3", "-crlf")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		in.Close()
		cmd.Wait()
	}()
	waitOut := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for out.count(what) < n {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %d %q from openssl: %s", n, what, out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	const req = "GET / HTTP/1.1\nHost: bench.example.com\n\n"
	waitOut("Verify return code", 1)
	io.WriteString(in, req)
	waitOut("hello world!", 1)
	for i, cmd := range []string{"K\n", "k\n", "K\n"} {
		waitFor(t, "the connection idle", func() bool { return BuffersCheckedOut() == 0 })
		io.WriteString(in, cmd)
		waitOut("KEYUPDATE", i+1)
		io.WriteString(in, req)
		waitOut("hello world!", i+2)
	}
	if n := f.srv.Sessions(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *lockedBuffer) count(s string) int { return strings.Count(b.String(), s) }

// TestIdleTLSRecordsReadAhead: requests in records of their own that
// reach the proxy together (crypto/tls reads them at once, and opens one
// at a time), or a record and the start of the next, the rest of it
// later: waitTLS parks without asking crypto/tls only when crypto/tls
// holds no complete record (polledConn.frame), so every request is
// served; also after a PROXY header, whose bytes are no TLS record.
func TestIdleTLSRecordsReadAhead(t *testing.T) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello world!\n")
	req := []byte("GET / HTTP/1.1\r\nHost: bench.example.com\r\n\r\n")
	addr := fixedBackend(t, resp)
	conf := testTLSConfig(t, "bench.example.com")
	hdr := proxyproto.Append(nil, netip.MustParseAddrPort("192.0.2.7:5555"), netip.MustParseAddrPort("198.51.100.1:443"))
	for _, proxy := range []bool{false, true} {
		for _, vers := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(fmt.Sprintf("proxy=%v/%x", proxy, vers), func(t *testing.T) {
				f := newFixture(t, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) {
					l.TLS, l.ExpectProxy = conf, proxy
				})
				raw, err := net.Dial("tcp", f.addr)
				if err != nil {
					t.Fatal(err)
				}
				hc := &holdConn{TCPConn: raw.(*net.TCPConn)}
				if proxy {
					if _, err := hc.Write(hdr); err != nil {
						t.Fatal(err)
					}
				}
				c := tls.Client(hc, &tls.Config{ServerName: "bench.example.com", InsecureSkipVerify: true, MaxVersion: vers})
				defer c.Close()
				roundTripFixed(t, c, req, resp, 1)
				for _, k := range []int{2, 3, 1, 2} {
					waitFor(t, "the connection idle", func() bool { return BuffersCheckedOut() == 0 })
					var recs []byte
					for range k {
						recs = append(recs, sealed(t, c, hc, req)...)
					}
					if _, err := hc.TCPConn.Write(recs); err != nil {
						t.Fatal(err)
					}
					roundTripFixed(t, c, nil, resp, k)
				}
				// A record and 3 bytes of the next; the rest once the
				// first is answered.
				r1, r2 := sealed(t, c, hc, req), sealed(t, c, hc, req)
				if _, err := hc.TCPConn.Write(append(r1, r2[:3]...)); err != nil {
					t.Fatal(err)
				}
				roundTripFixed(t, c, nil, resp, 1)
				waitFor(t, "the connection idle", func() bool { return BuffersCheckedOut() == 0 })
				if _, err := hc.TCPConn.Write(r2[3:]); err != nil {
					t.Fatal(err)
				}
				roundTripFixed(t, c, nil, resp, 1)
			})
		}
	}
}

// TestIdleTLSPlaintextLeftInTLS: pipelined requests whose bytes fill the
// session's read buffer (bufSize) up to the end of one of them, in the
// middle of a TLS record: the rest of the record stays decrypted within
// crypto/tls when the session, done with its buffer, waits for the next
// request; waitTLS asks crypto/tls first (the last read filled its
// buffer: idleWait.drained false), and every request is served.
func TestIdleTLSPlaintextLeftInTLS(t *testing.T) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := fixedBackend(t, resp)
	conf := testTLSConfig(t, "bench.example.com")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) { l.TLS = conf })
	// Records of 16 KiB of plaintext (no dynamic sizing); requests of
	// 640 bytes: the buffer (20 KiB) ends with the 32nd, in the second
	// record, whose last 12 KiB stay with crypto/tls.
	c, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "bench.example.com", InsecureSkipVerify: true, DynamicRecordSizingDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 640
	head := "GET / HTTP/1.1\r\nHost: bench.example.com\r\nX-Pad: "
	one := head + strings.Repeat("p", size-len(head)-4) + "\r\n\r\n"
	if bufSize%size != 0 || 16<<10%size == 0 {
		t.Fatalf("requests of %d bytes: the buffer must end with one, the first record in the middle of one", size)
	}
	n := (32 << 10) / size
	roundTripFixed(t, c, []byte(one), resp, 1)
	waitFor(t, "the connection idle", func() bool { return BuffersCheckedOut() == 0 })
	roundTripFixed(t, c, []byte(strings.Repeat(one, n)), resp, n)
}

// closeWithin closes f's server (Close: every connection, at once), and
// fails the test if that takes longer than d.
func closeWithin(t *testing.T, f *fixture, d time.Duration) {
	t.Helper()
	closed := make(chan struct{})
	go func() { f.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(d):
		t.Fatal("Close did not return")
	}
}
