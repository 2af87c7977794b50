package h2

import (
	"crypto/tls"
	"io"
	"runtime"
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

// TestIdleConnectionDropsLargeFrameBuffer: a connection that read a
// request body in DATA frames of 16 KiB keeps no 16 KiB frame buffer once
// the body has ended and it waits (the Framer's buffer, which grows to
// the largest frame read and never shrinks, goes with a new Framer): an
// idle connection costs about the same after an upload as after a GET.
func TestIdleConnectionDropsLargeFrameBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled objects at random: heap figures are noise")
	}
	get, post := idleHeap(t, 0), idleHeap(t, 16<<10)
	t.Logf("heap per idle connection (both ends): after a GET %.2f KiB, after a 16 KiB upload %.2f KiB", get, post)
	if post > get+6 {
		t.Errorf("an idle connection holds %.2f KiB after a 16 KiB upload, %.2f after a GET: the frame buffer is kept", post, get)
	}
}

// idleHeap opens connections that each make a request with a body of
// size bytes (in one DATA frame; none: a GET) and stay idle, and returns
// the heap each one holds then (client included), in KiB.
func idleHeap(t *testing.T, size int) float64 {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	const n = 100
	var data []byte
	if size > 0 {
		// One DATA frame (END_STREAM), written by hand: a client Framer
		// would keep a buffer its size, on the client's side of the heap.
		data = append([]byte{byte(size >> 16), byte(size >> 8), byte(size), byte(http2.FrameData), byte(http2.FlagDataEndStream), 0, 0, 0, 1}, make([]byte, size)...)
	}
	rcs := make([]*rawClient, 0, n)
	// Two collections empty the sync.Pools (their victim caches too),
	// here as below.
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		rc := dialRaw(t, ts.addr)
		rc.get(1, size == 0)
		if size > 0 {
			if _, err := rc.nc.Write(data); err != nil {
				t.Fatal(err)
			}
		}
		rc.waitFor("the response", streamsEnded(1))
		rcs = append(rcs, rc)
	}
	waitCond(t, "no buffer checked out by idle connections", func() bool { return BuffersCheckedOut() == 0 })
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(rcs)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n / 1024
}
