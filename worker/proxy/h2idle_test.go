package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/worker/h2"
)

// Idle HTTP/2 connections hold no buffers: their reader gives its read
// buffer back at each frame boundary where it has consumed every byte,
// and waits for the next ones through waitTLSConn (idle.go), parked outside
// crypto/tls; the writer holds a batch buffer only while it writes.

// h2IdleResp is the fixed backend's response in these tests.
var h2IdleResp = []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello world!\n")

// h2IdleFixture is an h2-only HTTPS listener for a.test in front of a
// fixed backend answering h2IdleResp; setup, if not nil, edits the
// listener further.
func h2IdleFixture(t *testing.T, setup func(*Listener)) *fixture {
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	return newFixture(t, anyHost("c"), map[string][]string{"c": {fixedBackend(t, h2IdleResp)}}, func(l *Listener) {
		l.TLS = conf
		if setup != nil {
			setup(l)
		}
	})
}

// dialH2Over is dialH2 over the connection wrap makes of the TCP
// connection (nil: the TCP connection itself).
func dialH2Over(t *testing.T, f *fixture, wrap func(*net.TCPConn) net.Conn) *h2Conn {
	t.Helper()
	raw, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	var nc net.Conn = raw
	if wrap != nil {
		nc = wrap(raw.(*net.TCPConn))
	}
	c := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2"}})
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	h := &h2Conn{c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.hb)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h.fr.WriteSettings()
	return h
}

// ended reads frames until each stream of ids has ended with the fixed
// response's body; a reset or a GOAWAY fails t.
func (h *h2Conn) ended(t *testing.T, ids ...uint32) {
	t.Helper()
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	left := make(map[uint32][]byte, len(ids))
	for _, id := range ids {
		left[id] = nil
	}
	for len(left) > 0 {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for streams %v: %v", ids, err)
		}
		switch fr := fr.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("waiting for streams %v: %v", ids, fr)
		case *http2.HeadersFrame:
			if fr.StreamEnded() {
				t.Fatalf("stream %d: a response without a body", fr.StreamID)
			}
		case *http2.DataFrame:
			body, ok := left[fr.StreamID]
			if !ok {
				t.Fatalf("DATA on stream %d, not one of %v", fr.StreamID, ids)
			}
			body = append(body, fr.Data()...)
			left[fr.StreamID] = body
			if fr.StreamEnded() {
				if string(body) != "hello world!\n" {
					t.Fatalf("stream %d: body %q", fr.StreamID, body)
				}
				delete(left, fr.StreamID)
			}
		}
	}
}

// headersFrame is the HEADERS frame (END_STREAM, END_HEADERS) of a GET
// of / on stream id, as bytes.
func (h *h2Conn) headersFrame(id uint32) []byte {
	var b bytes.Buffer
	http2.NewFramer(&b, nil).WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block("/"), EndStream: true, EndHeaders: true})
	return b.Bytes()
}

func waitIdleH2(t *testing.T) {
	t.Helper()
	waitFor(t, "the connections idle, their buffers given back", func() bool { return BuffersCheckedOut() == 0 })
}

// TestH2IdleConnectionsHoldNoBuffers holds many HTTP/2 connections, each
// idle after one request, and checks through the pooled-buffer counter
// that none of them holds a read buffer (nor a batch buffer) meanwhile;
// then that each one still serves requests, several concurrent streams
// on some. Each held its 16 KiB read buffer for its whole life.
func TestH2IdleConnectionsHoldNoBuffers(t *testing.T) {
	f := h2IdleFixture(t, nil)
	const n = 100
	conns := make([]*h2Conn, n)
	for i := range conns {
		h := dialH2Over(t, f, nil)
		h.get(1, "/")
		h.ended(t, 1)
		conns[i] = h
	}
	waitIdleH2(t)
	if got := h2.BuffersCheckedOut(); got != 0 {
		t.Fatalf("%d HTTP/2 buffers checked out by %d idle connections, want 0", got, n)
	}
	for i, h := range conns {
		ids := []uint32{3}
		if i%10 == 0 {
			ids = []uint32{3, 5, 7, 9, 11}
		}
		for _, id := range ids {
			h.get(id, "/")
		}
		h.ended(t, ids...)
	}
	waitIdleH2(t)
}

// TestH2IdleConnectionStack: the goroutines of an idle HTTP/2 connection
// (its reader, parked outside crypto/tls's Read through waitTLSConn, and its
// writer, parked on a condition variable) hold about what two plain
// HTTP/1.1 connections' do, 4 KiB each, the least a parked goroutine
// keeps (a reader that only serves small requests never grows past it).
// It logs what an idle connection costs, heap and stacks.
func TestH2IdleConnectionStack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's frames are larger: every stack stays at 8 KiB (make test runs this without it)")
	}
	plain := idleStack(t, false)
	stack, heap := idleH2Mem(t)
	t.Logf("per idle connection: plain HTTP/1.1 stack %.2f KiB; HTTP/2 stacks %.2f KiB, heap %.2f KiB", plain, stack, heap)
	// Two goroutines: the reader, and the writer. The plain figure is
	// measured too, and a GC that shrank some stacks to 2 KiB meanwhile
	// brings it under the 4 KiB a parked goroutine usually keeps (2.67
	// KiB seen on a loaded machine): the bound takes at least that.
	per := max(plain, 4)
	if stack > 2*per*1.25 {
		t.Errorf("%.2f KiB of stack per idle HTTP/2 connection (reader and writer), want about two plain connections', %.2f", stack, 2*per)
	}
}

// idleH2Mem opens HTTP/2 connections that each make a request and stay
// idle, and returns the stack and heap each one holds then, in KiB; then
// it checks that each still serves a request.
func idleH2Mem(t *testing.T) (stack, heap float64) {
	f := h2IdleFixture(t, nil)
	const n = 300
	conns := make([]*h2Conn, 0, n)
	// Two collections empty the sync.Pools (their victim caches too),
	// here as below.
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		h := dialH2Over(t, f, nil)
		h.get(1, "/")
		h.ended(t, 1)
		conns = append(conns, h)
	}
	waitIdleH2(t)
	// Each collection halves a stack at most once.
	runtime.GC()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, h := range conns {
		h.get(3, "/")
		h.ended(t, 3)
	}
	// The clients' connections are in the same heap: their share is
	// counted too (tls.Conn, Framer), as in idleStack.
	stack = float64(int64(after.StackInuse)-int64(before.StackInuse)) / n / 1024
	heap = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n / 1024
	return stack, heap
}

// TestH2FramesInPieces: frames whose TLS records reach an idle connection
// a byte at a time (trickleConn), and a frame split across two TLS
// records with a pause between them (its first record of one byte, of its
// header, of all but one byte): every request is served, and the
// connection, idle again, holds no buffer.
func TestH2FramesInPieces(t *testing.T) {
	f := h2IdleFixture(t, nil)
	tr := dialH2Over(t, f, func(c *net.TCPConn) net.Conn { c.SetNoDelay(true); return trickleConn{c} })
	id := uint32(1)
	for _, k := range []int{1, 3, 1} {
		var ids []uint32
		var frames []byte
		for range k {
			frames = append(frames, tr.headersFrame(id)...)
			ids = append(ids, id)
			id += 2
		}
		if _, err := tr.c.Write(frames); err != nil {
			t.Fatal(err)
		}
		tr.ended(t, ids...)
		waitIdleH2(t)
	}

	h := dialH2Over(t, f, nil)
	h.get(1, "/")
	h.ended(t, 1)
	id = 3
	for _, cut := range []int{1, 5, 9, -1} {
		waitIdleH2(t)
		frame := h.headersFrame(id)
		if cut < 0 {
			cut = len(frame) - 1
		}
		if _, err := h.c.Write(frame[:cut]); err != nil { // a record of its own
			t.Fatal(err)
		}
		// The reader took the first record and waits for the rest of the
		// frame, its read buffer in hand.
		waitFor(t, "the reader to hold the frame's start", func() bool { return h2.BuffersCheckedOut() > 0 })
		if _, err := h.c.Write(frame[cut:]); err != nil {
			t.Fatal(err)
		}
		h.ended(t, id)
		id += 2
	}
	waitIdleH2(t)
}

// TestH2IdleContinuation: a header block split over HEADERS and
// CONTINUATION with a pause between them, the connection idle meanwhile
// (no buffer held): the request is served; a block whose CONTINUATION
// does not come within the request timeout ends the connection then, not
// at the front timeout.
func TestH2IdleContinuation(t *testing.T) {
	f := h2IdleFixture(t, func(l *Listener) { l.RequestTimeout = 500 * time.Millisecond })
	h := dialH2Over(t, f, nil)
	h.get(1, "/")
	h.ended(t, 1)
	waitIdleH2(t)
	block := h.block("/")
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block[:1], EndStream: true})
	// The reader takes the HEADERS frame and waits for the CONTINUATION
	// without a buffer (nothing here tells when it has: the second half
	// of the test shows that it waited there).
	waitIdleH2(t)
	h.fr.WriteContinuation(3, true, block[1:])
	h.ended(t, 3)

	waitIdleH2(t)
	start := time.Now()
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: block[:1], EndStream: true})
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	var away *http2.GoAwayFrame
	for {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			break // the connection ends after its GOAWAY
		}
		if g, ok := fr.(*http2.GoAwayFrame); ok {
			away = g
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the unfinished header block ended the connection after %v, want about the request timeout", d)
	}
	if away == nil || away.ErrCode != http2.ErrCodeNo {
		t.Fatalf("GOAWAY %v, want one with NO_ERROR", away)
	}
	waitFor(t, "the session to end", func() bool { return f.srv.Sessions() == 0 })
	waitIdleH2(t)
}

// TestH2IdlePingAndGoAway: an idle connection answers a PING at once and
// stays idle; after the client's GOAWAY it answers its PINGs still, and
// ends once the client has been quiet for a second (peerGoAwayQuiet),
// with the reader parked outside crypto/tls meanwhile.
func TestH2IdlePingAndGoAway(t *testing.T) {
	f := h2IdleFixture(t, nil)
	h := dialH2Over(t, f, nil)
	h.get(1, "/")
	h.ended(t, 1)
	ping := func(data [8]byte) {
		t.Helper()
		waitIdleH2(t)
		h.fr.WritePing(false, data)
		for {
			fr, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatalf("waiting for the PING's ACK: %v", err)
			}
			if p, ok := fr.(*http2.PingFrame); ok && p.IsAck() && p.Data == data {
				return
			}
			if g, ok := fr.(*http2.GoAwayFrame); ok && g.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY %v", g)
			}
		}
	}
	ping([8]byte{'i', 'd', 'l', 'e'})
	h.get(3, "/")
	h.ended(t, 3)

	waitIdleH2(t)
	h.fr.WriteGoAway(3, http2.ErrCodeNo, nil)
	ping([8]byte{'a', 'f', 't', 'e', 'r'})
	start := time.Now()
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		fr, err := h.fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after the client's GOAWAY: %v", err)
		}
		if g, ok := fr.(*http2.GoAwayFrame); ok && g.ErrCode != http2.ErrCodeNo {
			t.Fatalf("GOAWAY %v", g)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the connection ended %v after the client went quiet, want about a second", d)
	}
	waitFor(t, "the session to end", func() bool { return f.srv.Sessions() == 0 })
	waitIdleH2(t)
}

// TestH2IdleSoftStop: a soft stop of a server whose HTTP/2 connection is
// idle (its reader parked outside crypto/tls): the advisory GOAWAY and
// its PING, answered, then the final GOAWAY naming the last stream, the
// connection closed and Shutdown done, well before the drain deadline.
func TestH2IdleSoftStop(t *testing.T) {
	f := h2IdleFixture(t, nil)
	h := dialH2Over(t, f, nil)
	h.get(1, "/")
	h.ended(t, 1)
	waitIdleH2(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	start := time.Now()
	go func() { shut <- f.srv.Shutdown(ctx) }()
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	var last []uint32
	for {
		fr, err := h.fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("during the soft stop: %v (GOAWAYs %v)", err, last)
		}
		switch fr := fr.(type) {
		case *http2.PingFrame:
			if !fr.IsAck() {
				h.fr.WritePing(true, fr.Data)
			}
		case *http2.GoAwayFrame:
			if fr.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY %v (last stream %d) during the soft stop", fr.ErrCode, fr.LastStreamID)
			}
			last = append(last, fr.LastStreamID)
		}
	}
	if len(last) != 2 || last[0] != 1<<31-1 || last[1] != 1 {
		t.Fatalf("GOAWAYs naming %v, want the advisory one then stream 1", last)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the soft stop took %v", d)
	}
	waitIdleH2(t)
}

// TestH2IdleHardClose: a hard stop closes an idle HTTP/2 connection, its
// reader parked outside crypto/tls with part of a record read: Close
// returns, the client sees its connection end, and no buffer stays out.
func TestH2IdleHardClose(t *testing.T) {
	f := h2IdleFixture(t, nil)
	hc := &holdConn{}
	h := dialH2Over(t, f, func(c *net.TCPConn) net.Conn { hc.TCPConn = c; return hc })
	h.get(1, "/")
	h.ended(t, 1)
	waitIdleH2(t)
	rec := sealed(t, h.c, hc, h.headersFrame(3))
	if _, err := hc.TCPConn.Write(rec[:len(rec)-1]); err != nil {
		t.Fatal(err)
	}
	closeWithin(t, f, 10*time.Second)
	h.c.SetDeadline(time.Now().Add(5 * time.Second))
	for {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the connection stayed open after a hard stop")
			}
			break
		}
		if _, ok := fr.(*http2.HeadersFrame); ok {
			t.Fatalf("a response after a hard stop: %v", fr)
		}
	}
	waitIdleH2(t)
}
