package h2

import (
	"crypto/tls"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// streamsEnded is a waitFor predicate: true once k streams have ended
// with a DATA frame.
func streamsEnded(k int) func(http2.Frame) bool {
	n := 0
	return func(f http2.Frame) bool {
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			n++
		}
		return n == k
	}
}

// TestIdleConnectionHoldsNoReadBuffer: a connection over an IdleWaiter
// (peekConn, as startServer serves cleartext ones) gives its read buffer
// back while it waits for the next frame, and takes one again when bytes
// come: idle connections hold none, and still serve requests, several
// streams at once. A connection over a plain net.Conn (TLS here) keeps
// one for its life; no connection keeps one once it has ended.
func TestIdleConnectionHoldsNoReadBuffer(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	const n = 20
	rcs := make([]*rawClient, n)
	for i := range rcs {
		rc := dialRaw(t, ts.addr)
		rc.get(1, true)
		rc.waitFor("the response", streamsEnded(1))
		rcs[i] = rc
	}
	waitCond(t, "no buffer checked out by idle connections", func() bool { return BuffersCheckedOut() == 0 })
	for _, rc := range rcs {
		rc.get(3, true)
		rc.get(5, true)
		rc.get(7, true)
		rc.waitFor("three responses", streamsEnded(3))
	}
	waitCond(t, "no buffer checked out by idle connections", func() bool { return BuffersCheckedOut() == 0 })

	cert, pool := testCert(t)
	tts := startServer(t, Limits{}, helloHandler, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}, nil)
	tc, err := tls.Dial("tcp", tts.addr, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawClient{t: t, nc: tc, fr: http2.NewFramer(tc, tc)}
	rc.enc = hpack.NewEncoder(&rc.buf)
	io.WriteString(tc, http2.ClientPreface)
	rc.fr.WriteSettings()
	rc.get(1, true)
	rc.waitFor("the response", streamsEnded(1))
	waitCond(t, "the TLS connection's read buffer, and only it, checked out", func() bool { return BuffersCheckedOut() == 1 })
	tc.Close()
	tts.serveErr() // whatever it ended with
	waitCond(t, "no buffer checked out once the connection ended", func() bool { return BuffersCheckedOut() == 0 })
}
