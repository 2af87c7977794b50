package h2

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// floodCase drives one abuse pattern with raw frames and expects
// GOAWAY(ENHANCE_YOUR_CALM) plus a Serve error naming the limit.
type floodCase struct {
	name   string
	lim    Limits
	h      Handler
	reason string
	drive  func(rc *rawClient)
}

func TestFloodLimits(t *testing.T) {
	cases := []floodCase{
		{name: "rapid reset per window", lim: Limits{MaxRstStreamAbusiveLifetime: 1 << 20}, h: blockHandler, reason: "RST_STREAM flood",
			drive: func(rc *rawClient) {
				for i := uint32(0); i < 101; i++ {
					rc.get(2*i+1, false)
					rc.fr.WriteRSTStream(2*i+1, http2.ErrCodeCancel)
				}
			}},
		{name: "reset lifetime", lim: Limits{MaxRstStreamLifetime: 5, MaxRstStreamAbusiveLifetime: 1 << 20}, h: helloHandler, reason: "RST_STREAM lifetime",
			drive: func(rc *rawClient) {
				for i := uint32(0); i < 6; i++ {
					rc.get(2*i+1, true)
					rc.fr.WriteRSTStream(2*i+1, http2.ErrCodeCancel)
				}
			}},
		{name: "early cancel lifetime (default 50)", h: blockHandler, reason: "cancelled before a response",
			drive: func(rc *rawClient) {
				for i := uint32(0); i < 51; i++ {
					rc.get(2*i+1, true)
					rc.fr.WriteRSTStream(2*i+1, http2.ErrCodeCancel)
				}
			}},
		{name: "provoked resets", lim: Limits{MaxRstStreamEmittedLifetime: 5, MaxGlitchCount: 1000}, h: blockHandler, reason: "RST_STREAM frames provoked",
			drive: func(rc *rawClient) {
				for i := uint32(0); i < 6; i++ {
					rc.fr.WritePriority(2*i+1, http2.PriorityParam{StreamDep: 2*i + 1})
				}
			}},
		{name: "glitches", lim: Limits{MaxGlitchCount: 5}, h: blockHandler, reason: "glitches",
			drive: func(rc *rawClient) {
				for i := uint32(0); i < 6; i++ {
					rc.get(2*i+1, false)
					rc.fr.WriteRSTStream(2*i+1, http2.ErrCodeCancel)
					rc.fr.WriteWindowUpdate(2*i+1, 1) // on a stream the peer reset: STREAM_CLOSED, a glitch
				}
			}},
		{name: "PING", reason: "PING flood", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 101; i++ {
					rc.fr.WritePing(false, [8]byte{byte(i)})
				}
			}},
		{name: "SETTINGS", reason: "SETTINGS flood", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 50; i++ { // plus the handshake SETTINGS and its ACK
					rc.fr.WriteSettings()
				}
			}},
		{name: "PING lifetime", lim: Limits{MaxPingLifetime: 5}, reason: "PING lifetime cap", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 6; i++ {
					rc.fr.WritePing(false, [8]byte{byte(i)})
				}
			}},
		{name: "SETTINGS lifetime", lim: Limits{MaxSettingsLifetime: 5}, reason: "SETTINGS lifetime cap", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 5; i++ { // plus the handshake SETTINGS
					rc.fr.WriteSettings()
				}
			}},
		{name: "unsolicited PING ACKs", reason: "PING flood", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 101; i++ {
					rc.fr.WritePing(true, [8]byte{byte(i)})
				}
			}},
		{name: "unsolicited SETTINGS ACKs", reason: "SETTINGS flood", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 51; i++ { // after the ACK of our SETTINGS
					rc.fr.WriteSettingsAck()
				}
			}},
		{name: "SETTINGS entries", reason: "SETTINGS entries", h: helloHandler,
			drive: func(rc *rawClient) {
				var st []http2.Setting
				for i := 0; i < 65; i++ {
					st = append(st, http2.Setting{ID: http2.SettingID(0x100 + i), Val: 1})
				}
				rc.fr.WriteSettings(st...)
			}},
		{name: "empty DATA", reason: "empty DATA flood", h: blockHandler,
			drive: func(rc *rawClient) {
				rc.get(1, false)
				for i := 0; i < 101; i++ {
					rc.fr.WriteData(1, false, nil)
				}
			}},
		{name: "stream-0 WINDOW_UPDATE", reason: "WINDOW_UPDATE flood", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 101; i++ {
					rc.fr.WriteWindowUpdate(0, 1)
				}
			}},
		{name: "stream WINDOW_UPDATE beyond the DATA sent", reason: "WINDOW_UPDATE flood", h: blockHandler,
			drive: func(rc *rawClient) {
				rc.get(1, false)
				for i := 0; i < 101; i++ {
					rc.fr.WriteWindowUpdate(1, 1) // valid one by one, on an open stream
				}
			}},
		{name: "WINDOW_UPDATE on a closed stream", reason: "WINDOW_UPDATE flood", h: helloHandler,
			drive: func(rc *rawClient) {
				rc.get(1, true)
				rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
				// 101 beyond the credit the response may have earned
				// before the reset ("hello 0": 7 bytes, returned by the
				// first 7 updates, which are not counted).
				for i := 0; i < 101+7; i++ {
					rc.fr.WriteWindowUpdate(1, 1)
				}
			}},
		{name: "PRIORITY", reason: "PRIORITY flood", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 101; i++ {
					rc.fr.WritePriority(3, http2.PriorityParam{StreamDep: 0, Weight: 15})
				}
			}},
		{name: "unknown (extension) frames", reason: "extension frame flood", h: helloHandler,
			drive: func(rc *rawClient) {
				// Ignored one by one (RFC 9113 §5.5), yet each costs its
				// handling: PRIORITY's budget.
				for i := 0; i < 101; i++ {
					rc.fr.WriteRawFrame(0x20, 0, 0, nil)
				}
			}},
		{name: "PRIORITY_UPDATE (RFC 9218)", reason: "PRIORITY flood", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 101; i++ {
					rc.fr.WritePriorityUpdate(1, "u=1")
				}
			}},
		{name: "PRIORITY and extension frames share a budget", reason: "extension frame flood", h: helloHandler,
			drive: func(rc *rawClient) {
				for i := 0; i < 50; i++ {
					rc.fr.WritePriority(3, http2.PriorityParam{StreamDep: 0, Weight: 15})
				}
				for i := 0; i < 51; i++ {
					rc.fr.WriteRawFrame(0x20, 0, 1, []byte("ext"))
				}
			}},
		{name: "DATA on a stream we reset, past its window", reason: "glitches", h: blockHandler,
			lim: Limits{InitialStreamWindow: 1000},
			drive: func(rc *rawClient) {
				rc.get(1, false)
				// A stream error: we reset stream 1 (PROTOCOL_ERROR).
				rc.fr.WriteWindowUpdate(1, 0)
				// What the peer sent before seeing our RST_STREAM is
				// dropped quietly, up to the stream's window; each frame
				// beyond is a glitch, as on any closed stream.
				for i := 0; i < 1000+101; i++ {
					rc.fr.WriteData(1, false, []byte("x"))
				}
			}},
		{name: "CONTINUATION count", reason: "CONTINUATION flood", h: helloHandler,
			drive: func(rc *rawClient) {
				block := rc.headerBlock(getReq...)
				rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1], EndStream: true})
				for i := 0; i < 21; i++ {
					rc.fr.WriteContinuation(1, false, nil)
				}
			}},
		{name: "header block bytes", reason: "header block too large", h: helloHandler,
			lim: Limits{MaxHeaderListSize: 1 << 20, MaxHeaderFields: 1 << 20},
			drive: func(rc *rawClient) {
				// Valid HPACK: literal fields without indexing, 1000-byte values.
				var block []byte
				for len(block) < 80<<10 {
					block = append(block, 0x00, 0x03, 'x', '-', 'a', 0x7f, 0xe9, 0x06) // value length 1000
					block = append(block, make([]byte, 1000)...)
				}
				rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:16384], EndStream: true})
				for off := 16384; off < len(block); off += 16384 {
					rc.fr.WriteContinuation(1, false, block[off:min(off+16384, len(block))])
				}
			}},
		{name: "Huffman string decoding past the header list size", reason: "HPACK bomb", h: helloHandler,
			drive: func(rc *rawClient) {
				// One literal field whose Huffman-coded value, 43 750
				// bytes on the wire, decodes to 70 000: past the 64 KiB
				// header list, an HPACK bomb, not a compression error.
				val := hpack.AppendHuffmanString(nil, strings.Repeat("0", 70000))
				block := rc.headerBlock(getReq...)
				block = append(block, 0x00, 0x03, 'x', '-', 'h')
				n := len(val) - 127
				block = append(block, 0x80|0x7f)
				for ; n >= 128; n >>= 7 {
					block = append(block, byte(n&0x7f|0x80))
				}
				block = append(block, byte(n))
				block = append(block, val...)
				rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:16384], EndStream: true})
				for off := 16384; off < len(block); off += 16384 {
					rc.fr.WriteContinuation(1, off+16384 >= len(block), block[off:min(off+16384, len(block))])
				}
			}},
		{name: "header field count", reason: "too many header fields", h: helloHandler,
			drive: func(rc *rawClient) {
				f := append([]string(nil), getReq...)
				for i := 0; i < 125; i++ {
					f = append(f, "x-f", "v")
				}
				rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.headerBlock(f...), EndStream: true, EndHeaders: true})
			}},
		{name: "HPACK bomb", reason: "HPACK bomb", h: helloHandler,
			drive: func(rc *rawClient) {
				f := append([]string(nil), getReq...)
				big := strings.Repeat("b", 4000)
				for i := 0; i < 20; i++ { // 1 byte each on the wire after the first
					f = append(f, "x-bomb", big)
				}
				block := rc.headerBlock(f...)
				if len(block) > 5000 {
					panic("encoder did not index")
				}
				rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.lim, tc.h, nil, &Options{Now: fixedClock()})
			rc := dialRaw(t, ts.addr)
			go tc.drive(rc) // the only writer; reading happens here
			rc.expectGoAway(http2.ErrCodeEnhanceYourCalm)
			rc.nc.Close()
			err := ts.serveErr()
			var ce *ConnError
			if !errors.As(err, &ce) || ce.Code != http2.ErrCodeEnhanceYourCalm || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("Serve = %v, want ENHANCE_YOUR_CALM %q", err, tc.reason)
			}
			if n := ts.stats.CalmGoAways.Load(); n != 1 {
				t.Fatalf("CalmGoAways = %d", n)
			}
			r := calmReasons[ce.Reason]
			if class := r.class; class == FloodOther || ts.stats.Floods[class].Load() != 1 {
				t.Fatalf("Floods[%v] = %d for %q, want 1 in a named class", class, ts.stats.Floods[class].Load(), ce.Reason)
			}
			if kind := r.kind; kind != KindNone && ts.stats.Kinds[kind].Load() != 1 {
				t.Fatalf("Kinds[%v] = %d for %q, want 1", kind, ts.stats.Kinds[kind].Load(), ce.Reason)
			}
		})
	}
}

// Below each limit nothing trips: the same patterns, one short.
func TestFloodLimitsNotTrippedBelow(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, &Options{Now: fixedClock()})
	rc := dialRaw(t, ts.addr)
	for i := 0; i < 100; i++ {
		rc.fr.WritePing(false, [8]byte{1})
	}
	for i := 0; i < 100; i++ {
		rc.fr.WriteWindowUpdate(0, 1)
	}
	// 50 SETTINGS with the handshake's; the ACK of ours is not one of
	// them (upstream counts SETTINGS and PING frames that are not ACKs).
	for i := 0; i < 49; i++ {
		rc.fr.WriteSettings()
	}
	rc.get(1, false)
	for i := 0; i < 100; i++ {
		rc.fr.WriteData(1, false, nil)
	}
	rc.fr.WriteData(1, true, nil)
	acks := 0
	rc.waitFor("response", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.PingFrame:
			acks++
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		case *http2.DataFrame:
			return f.StreamEnded()
		}
		return false
	})
	if acks != 100 {
		t.Fatalf("PING ACKs before response = %d", acks)
	}
}

func TestConcurrencyRefused(t *testing.T) {
	ts := startServer(t, Limits{MaxConcurrentStreams: 2}, blockHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.get(3, true)
	rc.get(5, true)
	rc.expectRST(5, http2.ErrCodeRefusedStream)
}

func TestZeroWindowStallReaped(t *testing.T) {
	h := HandlerFunc(func(s *Stream) {
		s.WriteHeader(200, nil)
		s.Write(make([]byte, 100))
		<-s.Done()
	})
	ts := startServer(t, Limits{StreamIdleTimeout: 100 * time.Millisecond}, h, nil, nil)
	rc := dialRaw(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	rc.get(1, true)
	rc.waitFor("HEADERS", func(f http2.Frame) bool {
		if _, ok := f.(*http2.DataFrame); ok {
			t.Fatal("DATA sent into a zero window")
		}
		_, ok := f.(*http2.HeadersFrame)
		return ok
	})
	rc.expectRST(1, http2.ErrCodeCancel)
	if n := ts.stats.ReapedStreams.Load(); n != 1 {
		t.Fatalf("reaped = %d", n)
	}
}

// TestGracefulShutdown: our soft stop sends the advisory GOAWAY (2^31-1)
// and a PING; a stream the client opens before it answers the PING (one
// it sent as the GOAWAY travelled) is served; the final GOAWAY names it;
// a stream above is ignored; the streams in flight finish, then the
// connection closes cleanly.
func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(s *Stream) {
		<-release
		s.Write([]byte("late"))
		s.Close()
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	c := <-ts.newc
	// Wait until the stream is accepted before shutting down.
	rc.fr.WritePing(false, [8]byte{9})
	rc.waitFor("PING ack", func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok })
	c.Shutdown()
	ga := rc.expectDrain(func() { rc.get(3, true) })
	if ga.LastStreamID != 3 {
		t.Fatalf("final GOAWAY last stream %d, want 3", ga.LastStreamID)
	}
	rc.get(5, true) // above the GOAWAY id: ignored
	close(release)
	body := map[uint32]string{}
	ended := 0
	rc.waitFor("responses end", func(f http2.Frame) bool {
		if d, ok := f.(*http2.DataFrame); ok {
			if d.StreamID != 1 && d.StreamID != 3 {
				t.Fatalf("DATA on stream %d", d.StreamID)
			}
			body[d.StreamID] += string(d.Data())
			if d.StreamEnded() {
				ended++
			}
		}
		return ended == 2
	})
	if body[1] != "late" || body[3] != "late" {
		t.Fatalf("bodies %v", body)
	}
	if _, err := rc.fr.ReadFrame(); err == nil {
		t.Fatal("connection still open after drain")
	}
	if err := ts.serveErr(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if n := ts.stats.Streams.Load(); n != 2 {
		t.Fatalf("streams = %d, want 2 (stream 5 ignored)", n)
	}
}

// TestGracefulShutdownPingUnanswered: a client that does not answer the
// drain PING still gets the final GOAWAY (after finalGoAwayWait), and the
// idle connection then closes.
func TestGracefulShutdownPingUnanswered(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.waitFor("response end", func(f http2.Frame) bool {
		d, ok := f.(*http2.DataFrame)
		return ok && d.StreamEnded()
	})
	(<-ts.newc).Shutdown()
	if ga := rc.expectGoAway(http2.ErrCodeNo); ga.LastStreamID != maxStreamID {
		t.Fatalf("first GOAWAY last stream %d, want 2^31-1", ga.LastStreamID)
	}
	if ga := rc.expectGoAway(http2.ErrCodeNo); ga.LastStreamID != 1 {
		t.Fatalf("final GOAWAY last stream %d, want 1", ga.LastStreamID)
	}
	if _, err := rc.fr.ReadFrame(); err == nil {
		t.Fatal("connection still open after drain")
	}
	if err := ts.serveErr(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

func TestGracefulShutdownDeadline(t *testing.T) {
	ts := startServer(t, Limits{GracefulShutdownDeadline: 50 * time.Millisecond}, blockHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.fr.WritePing(false, [8]byte{9})
	rc.waitFor("PING ack", func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok })
	(<-ts.newc).Shutdown()
	rc.expectGoAway(http2.ErrCodeNo)
	for {
		if _, err := rc.fr.ReadFrame(); err != nil {
			break // closed by the deadline
		}
	}
	if err := ts.serveErr(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

func TestInvalidPrefaceAndReadDeadline(t *testing.T) {
	// WriteTimeout defaults to ReadTimeout: 50 ms would let a loaded
	// machine's scheduling delay fail the GOAWAY's write.
	ts := startServer(t, Limits{ReadTimeout: 50 * time.Millisecond, WriteTimeout: 10 * time.Second}, helloHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	// Send nothing more: the read deadline must end the connection.
	rc.expectGoAway(http2.ErrCodeNo)
	if err := ts.serveErr(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	raw, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	err = ts.serveErr()
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Code != http2.ErrCodeProtocol {
		t.Fatalf("Serve = %v, want PROTOCOL_ERROR for a bad preface", err)
	}
}

// TestReadTimeoutSparesOpenStreams: a client that awaits a response
// longer than the read timeout is not idle: its connection stays, and the
// response reaches it; once no stream is open, the timeout ends the
// connection as before.
func TestReadTimeoutSparesOpenStreams(t *testing.T) {
	const timeout = 100 * time.Millisecond
	slow := HandlerFunc(func(s *Stream) {
		<-time.After(4 * timeout) // a backend slower than the client's read timeout
		s.WriteHeader(200, nil)
		s.Close()
	})
	ts := startServer(t, Limits{ReadTimeout: timeout, WriteTimeout: 10 * time.Second}, slow, nil, nil)
	rc := dialRaw(t, ts.addr)
	start := time.Now()
	rc.get(1, true)
	rc.waitFor("the response", func(f http2.Frame) bool {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY %v after %v, with the stream open", g.ErrCode, time.Since(start))
		}
		if r, ok := f.(*http2.RSTStreamFrame); ok {
			t.Fatalf("RST_STREAM %v after %v", r.ErrCode, time.Since(start))
		}
		h, ok := f.(*http2.HeadersFrame)
		return ok && h.StreamID == 1
	})
	rc.expectGoAway(http2.ErrCodeNo) // idle now: the timeout ends it
	if err := ts.serveErr(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

// TestHeaderBlockTimeout: a header block begun (HEADERS without
// END_HEADERS) must end within HeaderTimeout (request_timeout): a
// CONTINUATION slowloris, each frame within the read timeout, does not
// hold the connection and its half-decoded block past it.
func TestHeaderBlockTimeout(t *testing.T) {
	ts := startServer(t, Limits{ReadTimeout: 30 * time.Second, HeaderTimeout: time.Second}, helloHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	block := rc.headerBlock(getReq...)
	start := time.Now()
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1], EndStream: true})
	rc.expectGoAway(http2.ErrCodeNo)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the connection ended %v after its header block began, past the header timeout", d)
	}
	// A block that ends in time is served: the timeout is the block's.
	rc2 := dialRaw(t, ts.addr)
	rc2.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1], EndStream: true})
	rc2.fr.WriteContinuation(1, true, block[1:])
	rc2.waitFor("the response", func(f http2.Frame) bool {
		h, ok := f.(*http2.HeadersFrame)
		return ok && h.StreamID == 1
	})
}

// TestIdleConnectionDropsBatchBuffer: the batch buffer a large response
// grew is given back once it is written (idle connections hold no
// buffers), and the connection serves the next request as before.
func TestIdleConnectionDropsBatchBuffer(t *testing.T) {
	body := make([]byte, 200<<10)
	h := HandlerFunc(func(s *Stream) {
		s.WriteHeader(200, nil)
		s.Write(body)
		s.Close()
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	rc.fr.WriteWindowUpdate(0, 1<<30)
	for id := uint32(1); id <= 3; id += 2 {
		rc.get(id, true)
		got := 0
		rc.waitFor("the whole body", func(f http2.Frame) bool {
			d, ok := f.(*http2.DataFrame)
			if ok && d.StreamID == id {
				got += len(d.Data())
				return d.StreamEnded()
			}
			return false
		})
		if got != len(body) {
			t.Fatalf("stream %d: %d body bytes, want %d", id, got, len(body))
		}
		ts.mu.Lock()
		c := ts.conns[0]
		ts.mu.Unlock()
		waitCond(t, "the batch buffer dropped", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.streams) == 0 && !c.writing && c.wbuf.p == nil
		})
	}
}

// TestGracefulShutdownDefault: without h2_graceful_shutdown_deadline_seconds
// the streams in flight get upstream's 5 s after the GOAWAY.
func TestGracefulShutdownDefault(t *testing.T) {
	if got := DefaultLimits().GracefulShutdownDeadline; got != 5*time.Second {
		t.Fatalf("default GracefulShutdownDeadline %v, want upstream's 5s", got)
	}
}

// TestPeerGoAwayNoDeadline: a client's GOAWAY names the streams it
// initiated nothing about (its last stream id is ours, and we push none):
// its streams in flight are served to the end, however long past
// GracefulShutdownDeadline, which bounds only our own soft stop (as
// upstream arms it only there).
func TestPeerGoAwayNoDeadline(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(s *Stream) {
		<-release
		s.Write([]byte("late"))
		s.Close()
	})
	ts := startServer(t, Limits{GracefulShutdownDeadline: 50 * time.Millisecond}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.fr.WritePing(false, [8]byte{9})
	rc.waitFor("PING ack", func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok })
	rc.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	rc.expectGoAway(http2.ErrCodeNo)
	time.Sleep(200 * time.Millisecond) // the scenario, not a synchronisation: the handler answers 4 deadlines late
	close(release)
	var body []byte
	rc.waitFor("response end", func(f http2.Frame) bool {
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
			body = append(body, d.Data()...)
			return d.StreamEnded()
		}
		return false
	})
	if string(body) != "late" {
		t.Fatalf("body %q", body)
	}
	if _, err := rc.fr.ReadFrame(); err == nil {
		t.Fatal("connection still open after drain")
	}
}

// TestShutdownAfterPeerGoAway: our soft stop after a client's GOAWAY still
// bounds the streams in flight by GracefulShutdownDeadline.
func TestShutdownAfterPeerGoAway(t *testing.T) {
	ts := startServer(t, Limits{GracefulShutdownDeadline: 50 * time.Millisecond}, blockHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.fr.WritePing(false, [8]byte{9})
	rc.waitFor("PING ack", func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok })
	rc.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	rc.expectGoAway(http2.ErrCodeNo)
	(<-ts.newc).Shutdown()
	for {
		if _, err := rc.fr.ReadFrame(); err != nil {
			break // closed by the deadline
		}
	}
	if err := ts.serveErr(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

// TestMaxConcurrentStreamsClamped: h2_max_concurrent_streams is clamped
// to 10 000, as upstream clamps it.
func TestMaxConcurrentStreamsClamped(t *testing.T) {
	for in, want := range map[uint32]uint32{0: 100, 1: 1, 10000: 10000, 10001: 10000, 1 << 31: 10000} {
		if got := (Limits{MaxConcurrentStreams: in}).withDefaults().MaxConcurrentStreams; got != want {
			t.Errorf("MaxConcurrentStreams %d: %d, want %d", in, got, want)
		}
	}
}

// TestConnectionWindowBoundsBuffers: streams that write as Room allows (as
// the proxy's sessions do) buffer no more, all together, than the
// connection's send window: a client granting huge stream windows but no
// connection credit (or a client that stops returning it) holds no output
// buffer per stream beyond it. Before, each of the 20 streams below kept
// its 32 KiB output buffer full while the connection window was 0.
func TestConnectionWindowBoundsBuffers(t *testing.T) {
	const streams = 20
	body := make([]byte, 1<<20)
	h := HandlerFunc(func(s *Stream) {
		for range 64 {
			if s.WaitRoom() != nil {
				return
			}
			if _, err := s.Write(body[:s.Room()]); err != nil {
				return
			}
		}
	})
	ts := startServer(t, Limits{StreamIdleTimeout: time.Minute}, h, nil, nil)
	rc := dialRaw(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	c := <-ts.newc
	for i := range uint32(streams) {
		rc.get(2*i+1, true)
	}
	got := 0
	rc.waitFor("the connection window's worth of DATA", func(f http2.Frame) bool {
		if d, ok := f.(*http2.DataFrame); ok {
			got += len(d.Data())
		}
		return got >= 65535
	})
	// Every handler now waits for room (its Write or WaitRoom blocked).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		waiting, queued := 0, 0
		for _, s := range c.streams {
			if s.waitingWrite {
				waiting++
			}
			queued += len(s.out) - s.outHead
		}
		c.mu.Unlock()
		if waiting == streams {
			if queued > 65535 {
				t.Fatalf("%d bytes queued on %d streams stalled on a connection window of 0", queued, streams)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d handlers waiting for room", waiting, streams)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
}

// TestFramesAboveGoAwayIgnored: after our GOAWAY, every frame of a stream
// above its last stream id is ignored (RFC 9113 §6.8), whole requests
// included: a client that had a request with a body and trailers in
// flight when the GOAWAY came gets no RST_STREAM for it, and the
// connection is not ended (STREAM_CLOSED for trailers taken as frames of
// a closed stream) while stream 1, below the id, still runs.
func TestFramesAboveGoAwayIgnored(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(s *Stream) {
		<-release
		s.Write([]byte("late"))
		s.Close()
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.fr.WritePing(false, [8]byte{9})
	rc.waitFor("PING ack", func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok })
	(<-ts.newc).Shutdown()
	if ga := rc.expectDrain(nil); ga.LastStreamID != 1 {
		t.Fatalf("GOAWAY last stream %d, want 1", ga.LastStreamID)
	}
	post := []string{":method", "POST", ":scheme", "http", ":path", "/", ":authority", "localhost"}
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: rc.headerBlock(post...), EndHeaders: true})
	rc.fr.WriteData(3, false, []byte("body"))
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: rc.headerBlock("x-trailer", "1"), EndHeaders: true, EndStream: true})
	rc.fr.WritePing(false, [8]byte{10})
	rc.waitFor("PING ack", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM(%d, %v) for a stream above the GOAWAY id", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		}
		_, ok := f.(*http2.PingFrame)
		return ok
	})
	close(release)
	var body []byte
	rc.waitFor("response end", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM(%d, %v)", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			return f.StreamEnded()
		}
		return false
	})
	if string(body) != "late" {
		t.Fatalf("stream 1 body %q", body)
	}
	if err := ts.serveErr(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if n := ts.stats.StreamResets.Load(); n != 0 {
		t.Fatalf("%d streams reset", n)
	}
}

// TestGoAwayLastStreamIDNeverGrows: a connection error after our graceful
// GOAWAY repeats its last stream id, even though the client opened
// streams above it meanwhile (ignored): a GOAWAY never raises the last
// stream id sent before (RFC 9113 §6.8), since the client may have
// retried those streams elsewhere.
func TestGoAwayLastStreamIDNeverGrows(t *testing.T) {
	ts := startServer(t, Limits{}, blockHandler, nil, nil)
	rc := dialRaw(t, ts.addr)
	rc.get(1, true)
	rc.fr.WritePing(false, [8]byte{9})
	rc.waitFor("PING ack", func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok })
	(<-ts.newc).Shutdown()
	if ga := rc.expectDrain(nil); ga.LastStreamID != 1 {
		t.Fatalf("GOAWAY last stream %d, want 1", ga.LastStreamID)
	}
	rc.get(5, true) // above the GOAWAY id: ignored
	rc.get(4, true) // even: a connection error
	if ga := rc.expectGoAway(http2.ErrCodeProtocol); ga.LastStreamID != 1 {
		t.Fatalf("second GOAWAY last stream %d, want 1 as the first", ga.LastStreamID)
	}
}

// TestShutdownBeforeServe: a connection accepted while the server drains
// is shut down before Serve runs; its first frame must still be SETTINGS
// (the server preface, RFC 9113 §3.4), then the advisory GOAWAY and the
// final GOAWAY(NO_ERROR, 0).
func TestShutdownBeforeServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		c := NewConn(nc, Limits{}, blockHandler, nil)
		c.Shutdown()
		done <- c.Serve()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	fr := http2.NewFramer(nc, nc)
	nc.Write([]byte(http2.ClientPreface))
	fr.WriteSettings()
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		t.Fatalf("first server frame %v, want SETTINGS", f)
	}
	var last []uint32 // the GOAWAYs' last stream ids
	for len(last) < 2 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("GOAWAYs %v: %v", last, err)
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY %v", f.ErrCode)
			}
			last = append(last, f.LastStreamID)
		}
	}
	if last[0] != maxStreamID || last[1] != 0 {
		t.Fatalf("GOAWAY last stream ids %v, want 2^31-1 then 0", last)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

// TestProvokedResetsAreNoGlitches: a stream error a peer provokes on a new
// or open stream (a stream depending on itself, a zero WINDOW_UPDATE, a
// malformed request) counts toward h2_max_rst_stream_emitted_lifetime
// only, as upstream's MadeYouReset ceiling, not toward the glitch budget
// (upstream's glitches are stream-close races): 150 of them within a
// window, past the default 100 glitches, leave the connection serving,
// and the emitted ceiling, 200 here, ends it one past. The glitch budget
// ended it at the 101st before.
func TestProvokedResetsAreNoGlitches(t *testing.T) {
	ts := startServer(t, Limits{MaxRstStreamEmittedLifetime: 200}, helloHandler, nil, &Options{Now: fixedClock()})
	rc := dialRaw(t, ts.addr)
	id := uint32(1)
	provoke := func(n int) {
		for i := range n {
			switch i % 3 {
			case 0:
				rc.fr.WritePriority(id, http2.PriorityParam{StreamDep: id})
			case 1:
				rc.get(id, false)
				rc.fr.WriteWindowUpdate(id, 0)
			case 2:
				rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true, EndHeaders: true,
					BlockFragment: rc.headerBlock(":method", "GET", ":scheme", "http", ":path", "/", ":authority", "localhost", "te", "gzip")})
			}
			id += 2
		}
	}
	provoke(150)
	rc.get(id, true)
	served := id
	id += 2
	resets := 0
	rc.waitFor("response", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v after %d provoked resets, before the emitted ceiling", f.ErrCode, resets)
		case *http2.RSTStreamFrame:
			resets++
		case *http2.DataFrame:
			return f.StreamID == served && f.StreamEnded()
		}
		return false
	})
	if resets != 150 {
		t.Fatalf("%d RST_STREAM before the response, want 150", resets)
	}
	provoke(51)
	rc.expectGoAway(http2.ErrCodeEnhanceYourCalm)
	rc.nc.Close()
	var ce *ConnError
	if err := ts.serveErr(); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "RST_STREAM frames provoked") {
		t.Fatalf("Serve = %v, want the emitted ceiling", err)
	}
}
