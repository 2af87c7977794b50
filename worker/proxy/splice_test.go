package proxy

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/splice"
)

// TestContentLengthBodiesSplice: a large Content-Length response body goes
// from backend to a plain TCP client through splice (the counter of spliced
// bytes moves by nearly the whole body), arrives intact, and leaves both
// connections reusable (a second request on them works, one backend
// connection in all); under TLS it is copied as before. A backend that
// closes mid-body leaves the client with a short body and a closed
// connection, never a reused one.
func TestContentLengthBodiesSplice(t *testing.T) {
	const size = 3<<20 + 12345
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	want := sha256.Sum256(payload)
	handler := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		if r.URL.Path == "/short" {
			w.Write(payload[:size/2])
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		w.Write(payload)
	}
	cases := []struct {
		name    string
		tls     bool
		spliced bool
	}{
		{"plain", false, true},
		{"tls", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, c, br := spliceFixture(t, handler, tc.tls, 0)
			for i := range 2 { // the second on the same connections
				before := spliced.Load()
				body, closed := getRaw(t, c, br, "/")
				if len(body) != size || sha256.Sum256(body) != want {
					t.Fatalf("request %d: %d bytes, not the backend's %d", i, len(body), size)
				}
				if closed {
					t.Fatalf("request %d: the client connection was closed", i)
				}
				moved := spliced.Load() - before
				if tc.spliced && moved < size-bufSize {
					t.Fatalf("request %d: %d bytes spliced of %d", i, moved, size)
				}
				if !tc.spliced && moved != 0 {
					t.Fatalf("request %d: %d bytes spliced under TLS", i, moved)
				}
			}
			if n := b.conns.Load(); n != 1 {
				t.Fatalf("backend saw %d connections, want 1 reused", n)
			}
			body, closed := getRaw(t, c, br, "/short")
			if len(body) >= size || !closed {
				t.Fatalf("backend closing mid-body: client got %d of %d bytes, connection closed %v", len(body), size, closed)
			}
		})
	}
}

// spliceFixture starts a backend with handler and a proxy to it (under TLS
// when useTLS; with that request timeout unless 0), and returns the backend and
// a client connection to the proxy with its reader.
func spliceFixture(t *testing.T, handler http.HandlerFunc, useTLS bool, requestTimeout time.Duration) (*httpBackend, net.Conn, *bufio.Reader) {
	t.Helper()
	b := newHTTPBackend(t, handler)
	var conf *tls.Config
	if useTLS {
		conf = testTLSConfig(t, "a.test")
	}
	setup := func(l *Listener) {
		if useTLS {
			l.TLS = conf
		}
		if requestTimeout > 0 {
			l.RequestTimeout = requestTimeout
		}
	}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, setup)
	c := dialIdle(t, f.addr, useTLS)
	t.Cleanup(func() { c.Close() })
	return b, c, bufio.NewReader(c)
}

// getRaw sends a GET for path on c and reads the response: its body (the
// bytes up to Content-Length, or up to the connection's end) and whether
// the connection ended before the body did.
func getRaw(t *testing.T, c net.Conn, br *bufio.Reader, path string) ([]byte, bool) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	switch {
	case err == nil:
		return body, false
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return body, true
	}
	t.Fatalf("GET %s: %v after %d bytes", path, err, len(body))
	return nil, false
}

// TestContentLengthRequestBodiesSplice: a large Content-Length request
// body goes from a plain TCP client to the backend through a splice pipe
// (the pipes' byte counter moves by nearly the whole body) and arrives
// intact, on connections that stay reusable; under TLS it is copied. A
// client that stops mid-body (its request timeout) gets 408 and the body's
// backend connection is not reused; no pipe stays checked out.
func TestContentLengthRequestBodiesSplice(t *testing.T) {
	const size = 3<<20 + 4321
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	want := fmt.Sprintf("%x", sha256.Sum256(payload))
	handler := func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}
	for _, tc := range []struct {
		name    string
		tls     bool
		spliced bool
	}{
		{"plain", false, true},
		{"tls", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, c, br := spliceFixture(t, handler, tc.tls, 500*time.Millisecond)
			for i := range 2 { // the second on the same connections
				before := splice.Moved()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				head := fmt.Sprintf("POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n", size)
				go func() { c.Write(append([]byte(head), payload...)) }()
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				if got := string(body); resp.StatusCode != 200 || got != fmt.Sprintf("%d %s", size, want) {
					t.Fatalf("request %d: %d %q, want the body's length and hash", i, resp.StatusCode, got)
				}
				moved := splice.Moved() - before
				if tc.spliced && moved < size-2*bufSize {
					t.Fatalf("request %d: %d bytes spliced of %d", i, moved, size)
				}
				if !tc.spliced && moved != 0 {
					t.Fatalf("request %d: %d bytes spliced under TLS", i, moved)
				}
			}
			if n := b.conns.Load(); n != 1 {
				t.Fatalf("backend saw %d connections, want 1 reused", n)
			}
			// A body cut short: the client stops sending and waits.
			head := fmt.Sprintf("POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n", size)
			if _, err := c.Write(append([]byte(head), payload[:size/2]...)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("body cut short: %v", err)
			}
			if resp.StatusCode != 408 {
				t.Fatalf("body cut short: status %d, want 408", resp.StatusCode)
			}
			deadline := time.Now().Add(5 * time.Second)
			for splice.CheckedOut() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d pipes checked out after the exchanges", splice.CheckedOut())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
