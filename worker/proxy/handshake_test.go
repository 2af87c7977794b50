package proxy

import (
	"io"
	"net"
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
