package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSlowTLSHandshakeCut: a TLS handshake is bounded by the request
// timeout (the front timeout when that is shorter), as a request head is
// once its first byte came: a client that connects and trickles its
// ClientHello, or sends nothing, holds its connection slot that long, not
// the front timeout that bounds an idle keep-alive connection (six times
// as long by default), as upstream bounds a new session by its request
// timeout.
func TestSlowTLSHandshakeCut(t *testing.T) {
	const request = 300 * time.Millisecond
	conf := testTLSConfig(t, "a.test")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {"127.0.0.1:1"}}, func(l *Listener) {
		l.TLS = conf
		l.FrontTimeout, l.RequestTimeout = 20*time.Second, request
	})
	for _, tc := range []struct {
		name string
		sent []byte
	}{
		{"nothing sent", nil},
		{"a ClientHello cut short", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}}, // record header, then 1 byte of 512
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			c.Write(tc.sent)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c)
			if d := time.Since(start); d > request+2*time.Second {
				t.Fatalf("the stalled handshake was cut after %v, request timeout %v", d, request)
			}
		})
	}
}

// TestFirstRequestWaitIsTheRequestTimeout: a new connection has the
// request timeout (the front timeout when shorter) to send its first
// request, as HAProxy's timeout http-request, nginx's
// client_header_timeout and upstream's new sessions bound it: a client
// that connects (or completes its TLS handshake) and sends nothing holds
// its slot that long. The front timeout is the wait between the requests
// of a keep-alive connection, which has proved itself a client.
func TestFirstRequestWaitIsTheRequestTimeout(t *testing.T) {
	const request = 300 * time.Millisecond
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	conf := testTLSConfig(t, "a.test")
	for _, useTLS := range []bool{false, true} {
		f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
			if useTLS {
				l.TLS = conf
			}
			l.FrontTimeout, l.RequestTimeout = 20*time.Second, request
		})
		dial := func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if useTLS {
				tc := tls.Client(c, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				return tc
			}
			return c
		}
		t.Run(fmt.Sprintf("tls=%v/silent new connection cut", useTLS), func(t *testing.T) {
			c := dial(t)
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c)
			if d := time.Since(start); d > request+2*time.Second {
				t.Fatalf("a connection that sent nothing was cut after %v, request timeout %v", d, request)
			}
		})
		t.Run(fmt.Sprintf("tls=%v/keep-alive wait is the front timeout", useTLS), func(t *testing.T) {
			c := dial(t)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			for i := range 2 {
				if i == 1 {
					time.Sleep(3 * request) // idle between requests: longer than the request timeout
				}
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
