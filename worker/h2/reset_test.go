package h2

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// observed is a handler that blocks until its stream is reset and tells
// which resets StreamReset saw.
type observed struct {
	release chan struct{} // closed to let the blocked handlers return
	mu      sync.Mutex
	resets  chan uint32
}

func newObserved() *observed {
	return &observed{release: make(chan struct{}), resets: make(chan uint32, 64)}
}

func (o *observed) ServeStream(s *Stream) { <-o.release } // the handler's "backend" ignores the reset
func (o *observed) StreamReset(id uint32) { o.resets <- id }

func (o *observed) want(t *testing.T, ids ...uint32) {
	t.Helper()
	got := map[uint32]bool{}
	deadline := time.After(5 * time.Second)
	for len(got) < len(ids) {
		select {
		case id := <-o.resets:
			got[id] = true
		case <-deadline:
			t.Fatalf("StreamReset saw %v, want %v", got, ids)
		}
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("StreamReset saw %v, want %v", got, ids)
		}
	}
}

// TestResetObserver: a ResetObserver hears of a stream reset by the peer,
// of one reset by the server, and of every stream when the connection
// dies, while the handlers still run; a handler that ignores the reset
// holds no stream slot of the peer's: a stream past the limit of handlers
// is refused without counting against the peer.
func TestResetObserver(t *testing.T) {
	o := newObserved()
	defer close(o.release)
	ts := startServer(t, Limits{MaxConcurrentStreams: 2, MaxGlitchCount: 1}, o, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	o.want(t, 1)

	rc.get(3, true)
	rc.get(5, true) // two handlers run (1 and 3): refused, no glitch
	rc.expectRST(5, http2.ErrCodeRefusedStream)
	rc.get(7, true) // again: a glitch each would pass MaxGlitchCount
	rc.expectRST(7, http2.ErrCodeRefusedStream)

	// Trailers the client sent before it saw the refusal: ignored, the
	// connection lives on (RFC 9113 §5.1).
	rc.trailers(7)
	rc.stillServes("trailers on a refused stream")

	rc.nc.Close() // the connection dies: stream 3, still open, is reset
	o.want(t, 3)
}

// TestMalformedFramesEndTheConnection: frames too short for their
// padding or priority fields, and HEADERS whose padding is as long as
// their payload, end the connection with GOAWAY (RFC 9113 §4.2, §6.1,
// §6.2); the field block of the latter is never decoded, so going on
// would leave the HPACK tables apart.
func TestMalformedFramesEndTheConnection(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	for _, c := range []struct {
		name    string
		typ     http2.FrameType
		flags   http2.Flags
		payload []byte
		code    http2.ErrCode
	}{
		{"HEADERS padded, empty", http2.FrameHeaders, http2.FlagHeadersEndHeaders | http2.FlagHeadersPadded, nil, http2.ErrCodeFrameSize},
		{"HEADERS priority, 4 bytes", http2.FrameHeaders, http2.FlagHeadersEndHeaders | http2.FlagHeadersPriority, []byte{0, 0, 0, 0}, http2.ErrCodeFrameSize},
		{"HEADERS padded and priority, 5 bytes", http2.FrameHeaders, http2.FlagHeadersEndHeaders | http2.FlagHeadersPadded | http2.FlagHeadersPriority, []byte{0, 0, 0, 0, 0}, http2.ErrCodeFrameSize},
		{"DATA padded, empty", http2.FrameData, http2.FlagDataPadded, nil, http2.ErrCodeFrameSize},
		{"HEADERS padding as long as the payload", http2.FrameHeaders, http2.FlagHeadersEndHeaders | http2.FlagHeadersPadded, []byte{4, 0x82, 0x86, 0x84}, http2.ErrCodeProtocol},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			id := uint32(1)
			if c.typ == http2.FrameData {
				rc.get(1, false)
			}
			rc.fr.WriteRawFrame(c.typ, c.flags, id, c.payload)
			rc.expectGoAway(c.code)
		})
	}
}

// TestLateBlockOnResetStreamOnce: one header block on a stream we reset
// (its trailers, sent before our RST_STREAM arrived) is decoded and
// ignored; a second is one on a closed stream, not a free decode.
func TestLateBlockOnResetStreamOnce(t *testing.T) {
	h := HandlerFunc(func(s *Stream) { s.Reset(http2.ErrCodeInternal) })
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, false)
	rc.expectRST(1, http2.ErrCodeInternal)
	rc.trailers(1)
	rc.stillServes("the first late block")
	rc.trailers(1)
	rc.expectGoAway(http2.ErrCodeStreamClosed)
}

// TestBusyRefusalsBudgeted: while handlers of closed streams hold every
// slot, as many new streams as the limit are refused free; more, before a
// handler returns, are glitches, and past the glitch budget the
// connection ends.
func TestBusyRefusalsBudgeted(t *testing.T) {
	o := newObserved()
	defer close(o.release)
	ts := startServer(t, Limits{MaxConcurrentStreams: 1, MaxGlitchCount: 1}, o, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	o.want(t, 1) // stream 1 closed, its handler runs on
	rc.get(3, true)
	rc.expectRST(3, http2.ErrCodeRefusedStream) // free
	rc.get(5, true)
	rc.expectRST(5, http2.ErrCodeRefusedStream) // a glitch: 1 of 1
	rc.get(7, true)
	rc.expectGoAway(http2.ErrCodeEnhanceYourCalm) // a second glitch
}

// TestRequestOnStreamResetWhileIdle: a stream we reset while idle (a
// PRIORITY frame making it depend on itself) is not in the way of the
// request the peer then opens on it: it is served, not silently ignored.
func TestRequestOnStreamResetWhileIdle(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.fr.WritePriority(1, http2.PriorityParam{StreamDep: 1, Weight: 15})
	rc.expectRST(1, http2.ErrCodeProtocol)
	rc.get(1, true)
	rc.waitFor("the response on stream 1", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM %v on %d", f.ErrCode, f.StreamID)
		case *http2.HeadersFrame:
			return f.StreamID == 1
		}
		return false
	})
}

// TestLowerUnusedStreamID: HEADERS on an id the client skipped (never
// opened) is a new stream below one already used: PROTOCOL_ERROR (RFC
// 9113 §5.1.1); on an id it used and closed, STREAM_CLOSED (§5.1).
func TestLowerUnusedStreamID(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	for _, c := range []struct {
		name string
		ids  []uint32 // streams opened in order, each answered
		late uint32   // then a HEADERS on this lower id
		code http2.ErrCode
	}{
		{"skipped", []uint32{3}, 1, http2.ErrCodeProtocol},
		{"skipped in the middle", []uint32{1, 7}, 5, http2.ErrCodeProtocol},
		{"used and closed", []uint32{1, 3}, 1, http2.ErrCodeStreamClosed},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			for _, id := range c.ids {
				rc.get(id, true)
				rc.waitFor("the response", func(f http2.Frame) bool {
					return f.Header().StreamID == id && f.Header().Flags.Has(http2.FlagDataEndStream) &&
						(f.Header().Type == http2.FrameData || f.Header().Type == http2.FrameHeaders)
				})
			}
			rc.get(c.late, true)
			rc.expectGoAway(c.code)
		})
	}
}

// trailers sends a trailer block ending stream id.
func (rc *rawClient) trailers(id uint32) {
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.headerBlock("x-trailer", "1"), EndStream: true, EndHeaders: true})
}

// stillServes checks, by a PING answered, that the connection lives on
// after what it was sent: no GOAWAY.
func (rc *rawClient) stillServes(after string) {
	rc.t.Helper()
	rc.fr.WritePing(false, [8]byte{1})
	rc.waitFor("PING ACK", func(f http2.Frame) bool {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			rc.t.Fatalf("GOAWAY %v after %s", g.ErrCode, after)
		}
		p, ok := f.(*http2.PingFrame)
		return ok && p.IsAck()
	})
}

// earlyHandler answers at once, before the request's end, without reading
// its body (a 404, a redirect, a backend's early answer).
var earlyHandler = HandlerFunc(func(s *Stream) {
	s.WriteHeader(404, nil)
	s.Write([]byte("not here"))
	s.Close()
})

// awaitEnd reads until stream id's response has ended; a RST_STREAM or a
// GOAWAY before fails.
func (rc *rawClient) awaitEnd(id uint32) {
	rc.t.Helper()
	rc.waitFor("response end", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			rc.t.Fatalf("RST_STREAM(%d) %v before the response ended", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			rc.t.Fatalf("GOAWAY %v before the response ended", f.ErrCode)
		case *http2.DataFrame:
			return f.StreamID == id && f.StreamEnded()
		case *http2.HeadersFrame:
			return f.StreamID == id && f.StreamEnded()
		}
		return false
	})
}

// TestEarlyResponseLingers: a stream whose response is complete while the
// client still sends its request stays open a while (RFC 9113 §8.1 lets a
// server reset it at once with NO_ERROR, which turns what the client sends
// next into frames ignored on a stream we reset): a malformed remainder
// is still a stream error (h2spec's §8.1 and §8.1.2 cases against a
// listener that answers 404 at once failed half of the runs); a body that
// ends closes the stream without a reset; a client that goes on sending
// gets RST_STREAM(NO_ERROR) after earlyLinger.
func TestEarlyResponseLingers(t *testing.T) {
	ts := startServer(t, Limits{}, earlyHandler, nil, nil)
	rc := dialRaw(t, ts.addr)

	// Trailers without END_STREAM: PROTOCOL_ERROR.
	rc.get(1, false)
	rc.awaitEnd(1)
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.headerBlock("x-t", "1"), EndHeaders: true})
	rc.expectRST(1, http2.ErrCodeProtocol)

	// A pseudo-header in trailers: PROTOCOL_ERROR.
	rc.get(3, false)
	rc.awaitEnd(3)
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: rc.headerBlock(":path", "/x"), EndStream: true, EndHeaders: true})
	rc.expectRST(3, http2.ErrCodeProtocol)

	// A body longer than its content-length: PROTOCOL_ERROR.
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, EndHeaders: true,
		BlockFragment: rc.headerBlock(":method", "POST", ":scheme", "http", ":path", "/", ":authority", "localhost", "content-length", "1")})
	rc.awaitEnd(5)
	rc.fr.WriteData(5, true, []byte("test"))
	rc.expectRST(5, http2.ErrCodeProtocol)

	// The body ends: closed, no RST_STREAM; the connection serves on.
	rc.get(7, false)
	rc.awaitEnd(7)
	rc.fr.WriteData(7, true, []byte("rest of the body"))
	rc.get(9, true)
	rc.awaitEnd(9)

	// The client goes on: RST_STREAM(NO_ERROR) after earlyLinger, and what
	// it sends after that is ignored.
	rc.get(11, false)
	rc.awaitEnd(11)
	start := time.Now()
	rc.fr.WriteData(11, false, []byte("more"))
	rc.expectRST(11, http2.ErrCodeNo)
	if d := time.Since(start); d < earlyLinger/2 || d > 5*earlyLinger {
		t.Fatalf("RST_STREAM(NO_ERROR) %v after the response, want about %v", d, earlyLinger)
	}
	rc.fr.WriteData(11, true, []byte("late"))
	rc.stillServes("DATA on the stream reset after its response")
}

// TestEarlyResponseLingerBounded: an attacker opens streams answered at
// once and never ends its requests. The lingering streams count against
// SETTINGS_MAX_CONCURRENT_STREAMS (one more is refused), each is reset
// with NO_ERROR after earlyLinger, and the connection then takes streams
// again; a churn of streams that linger then end leaves no entry in the
// linger list once the sweep ran, and the list holds no more than the
// streams opened meanwhile.
func TestEarlyResponseLingerBounded(t *testing.T) {
	const limit = 8
	ts := startServer(t, Limits{MaxConcurrentStreams: limit}, earlyHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	var c *Conn
	select {
	case c = <-ts.newc:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}

	// limit streams answered, none ended by the client.
	ended, reset := map[uint32]bool{}, map[uint32]bool{}
	for i := range uint32(limit) {
		rc.get(2*i+1, false)
	}
	rc.waitFor("every response's end", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM(%d) %v before every response ended", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		case *http2.DataFrame:
			if f.StreamEnded() {
				ended[f.StreamID] = true
			}
		}
		return len(ended) == limit
	})
	// They linger, open: one more is refused.
	rc.get(2*limit+1, false)
	rc.expectRST(2*limit+1, http2.ErrCodeRefusedStream)
	// Each ends with RST_STREAM(NO_ERROR) after earlyLinger.
	start := time.Now()
	rc.waitFor("every lingering stream reset", func(f http2.Frame) bool {
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID <= 2*limit {
			if r.ErrCode != http2.ErrCodeNo {
				t.Fatalf("RST_STREAM(%d) %v, want NO_ERROR", r.StreamID, r.ErrCode)
			}
			reset[r.StreamID] = true
		}
		return len(reset) == limit
	})
	if d := time.Since(start); d > 5*earlyLinger {
		t.Fatalf("lingering streams reset %v after their responses, want about %v", d, earlyLinger)
	}
	// The connection takes streams again.
	rc.get(2*limit+3, true)
	rc.awaitEnd(2*limit + 3)

	// Churn: streams that linger, then end normally.
	const churn = 300
	id := uint32(2*limit + 5)
	for range churn {
		rc.get(id, false)
		rc.awaitEnd(id)
		rc.fr.WriteData(id, true, nil)
		id += 2
	}
	c.mu.Lock()
	n := len(c.lingering)
	c.mu.Unlock()
	if n > churn {
		t.Fatalf("%d streams in the linger list after %d lingered", n, churn)
	}
	deadline := time.Now().Add(10 * earlyLinger)
	for {
		c.mu.Lock()
		n, open := len(c.lingering), len(c.streams)
		c.mu.Unlock()
		if n == 0 && open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d streams still in the linger list, %d open, %v after the churn", n, open, 10*earlyLinger)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rc.stillServes("the churn")
}

// TestZeroWindowUpdateOnIdleStream: a WINDOW_UPDATE of increment 0 is a
// stream error only on a stream that exists; on an idle stream, as any
// frame but HEADERS or PRIORITY, it is a connection error PROTOCOL_ERROR
// (RFC 9113 §5.1), and RST_STREAM is never sent for an idle stream
// (§6.4). A zero increment on an open stream stays a stream error (§6.9).
func TestZeroWindowUpdateOnIdleStream(t *testing.T) {
	ts := startServer(t, Limits{}, blockHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, false)
	rc.fr.WriteWindowUpdate(1, 0)
	rc.expectRST(1, http2.ErrCodeProtocol)
	for _, id := range []uint32{7, 2} {
		rc := dialRaw(t, ts.addr)
		rc.fr.WriteWindowUpdate(id, 0)
		if ga := rc.expectGoAway(http2.ErrCodeProtocol); ga.LastStreamID != 0 {
			t.Fatalf("GOAWAY last stream %d, want 0", ga.LastStreamID)
		}
	}
}

// TestFramesOnServerStreamIDs: an even stream id is one the server would
// open and never does (no push): idle, whatever the client ids used, so
// DATA, RST_STREAM or WINDOW_UPDATE on it is a connection error
// PROTOCOL_ERROR (RFC 9113 §5.1), not taken for a closed stream's.
func TestFramesOnServerStreamIDs(t *testing.T) {
	ts := startServer(t, Limits{}, blockHandler, nil, nil)
	for name, send := range map[string]func(*rawClient){
		"DATA":          func(rc *rawClient) { rc.fr.WriteData(2, true, []byte("x")) },
		"RST_STREAM":    func(rc *rawClient) { rc.fr.WriteRSTStream(2, http2.ErrCodeCancel) },
		"WINDOW_UPDATE": func(rc *rawClient) { rc.fr.WriteWindowUpdate(2, 1) },
	} {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			rc.get(5, true)
			send(rc)
			if ga := rc.expectGoAway(http2.ErrCodeProtocol); ga.LastStreamID != 5 {
				t.Fatalf("GOAWAY last stream %d, want 5", ga.LastStreamID)
			}
		})
	}
}

// TestDataAfterEndStreamClosed: DATA on a stream the peer ended with
// END_STREAM, and whose response ended too, is a connection error
// STREAM_CLOSED (RFC 9113 §5.1, "closed"): no reset crossed it, so it
// cannot be late. DATA on a stream the peer reset stays a stream error.
func TestDataAfterEndStreamClosed(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.waitFor("response end", func(f http2.Frame) bool {
		d, ok := f.(*http2.DataFrame)
		return ok && d.StreamID == 1 && d.StreamEnded()
	})
	rc.get(3, false)
	rc.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	rc.fr.WriteData(3, true, []byte("x"))
	rc.expectRST(3, http2.ErrCodeStreamClosed)
	rc.fr.WriteData(1, true, []byte("x"))
	if ga := rc.expectGoAway(http2.ErrCodeStreamClosed); ga.LastStreamID != 3 {
		t.Fatalf("GOAWAY last stream %d, want 3", ga.LastStreamID)
	}
}

// TestPriorityOfWrongLength: a PRIORITY frame not 5 octets long is a
// stream error FRAME_SIZE_ERROR (RFC 9113 §6.3) on a stream that is not
// idle, the connection going on; on an idle stream, which no
// RST_STREAM may name (§6.4), it ends the connection.
func TestPriorityOfWrongLength(t *testing.T) {
	ts := startServer(t, Limits{}, blockHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, false)
	rc.fr.WriteRawFrame(http2.FramePriority, 0, 1, []byte{0, 0, 0, 0})
	rc.expectRST(1, http2.ErrCodeFrameSize)
	rc.stillServes("PRIORITY frames of the wrong length")
	rc.fr.WriteRawFrame(http2.FramePriority, 0, 9, []byte{0, 0, 0, 0})
	rc.expectGoAway(http2.ErrCodeFrameSize)
}

// TestWindowUpdateAfterPeerReset: a frame other than PRIORITY on a stream
// the peer reset is a stream error STREAM_CLOSED (RFC 9113 §5.1,
// "closed"), WINDOW_UPDATE included: it may only come late on a stream
// closed by END_STREAM or by our RST_STREAM, where it is ignored. A
// RST_STREAM after the peer's own is ignored (no RST_STREAM answers one,
// §5.4.2), as PRIORITY is.
func TestWindowUpdateAfterPeerReset(t *testing.T) {
	ts := startServer(t, Limits{}, blockHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, false)
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	rc.fr.WritePriority(1, http2.PriorityParam{Weight: 1})
	rc.stillServes("RST_STREAM and PRIORITY after RST_STREAM")
	rc.fr.WriteWindowUpdate(1, 100)
	rc.expectRST(1, http2.ErrCodeStreamClosed)
	rc.stillServes("WINDOW_UPDATE after RST_STREAM")

	// On a stream closed by END_STREAM both ways, and on one we reset,
	// a late WINDOW_UPDATE is ignored.
	hs := startServer(t, Limits{}, helloHandler, nil, nil)
	rc = dialRaw(t, hs.addr)
	rc.get(1, true)
	rc.awaitEnd(1)
	rc.fr.WriteWindowUpdate(1, 100)
	rc.stillServes("WINDOW_UPDATE after END_STREAM both ways")
	rs := startServer(t, Limits{}, HandlerFunc(func(s *Stream) { s.Reset(http2.ErrCodeInternal) }), nil, nil)
	rc = dialRaw(t, rs.addr)
	rc.get(1, false)
	rc.expectRST(1, http2.ErrCodeInternal)
	rc.fr.WriteWindowUpdate(1, 100)
	rc.stillServes("WINDOW_UPDATE after our RST_STREAM")
}
