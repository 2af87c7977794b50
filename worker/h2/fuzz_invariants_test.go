package h2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// maxWindow31 is the largest flow-control window (RFC 9113 §6.9.1).
const maxWindow31 = 1<<31 - 1

// invariantHandler echoes the body of /echo, answers /quick at once
// without reading, and leaves every other stream unanswered and unread
// until it is reset or the connection ends: buffered request bodies, queued
// responses and idle streams all occur.
var invariantHandler = HandlerFunc(func(s *Stream) {
	switch string(s.Path()) {
	case "/echo":
		echoHandler(s)
	case "/quick":
		s.WriteResponse(200, nil, []byte("quick"))
	default:
		<-s.Done()
	}
})

// checkInvariants checks c's state between two frames (called by the
// reader, c.mu not held) against the previous check's seen (stream id →
// whether its remote side had closed) and returns the first violation.
func checkInvariants(c *Conn, seen map[uint32]bool, lastMax *uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.sendWindow < 0 || c.sendWindow > maxWindow31:
		return fmt.Errorf("connection send window %d", c.sendWindow)
	case c.recvWindow < 0 || c.recvWindow > maxWindow31:
		return fmt.Errorf("connection receive window %d", c.recvWindow)
	case c.maxClientID < *lastMax:
		return fmt.Errorf("highest stream id went back from %d to %d", *lastMax, c.maxClientID)
	case len(c.streams) > int(c.lim.MaxConcurrentStreams):
		return fmt.Errorf("%d streams open, limit %d", len(c.streams), c.lim.MaxConcurrentStreams)
	case c.handlers > int(c.lim.MaxConcurrentStreams):
		return fmt.Errorf("%d handlers running, limit %d", c.handlers, c.lim.MaxConcurrentStreams)
	case len(c.ctrl) > maxCtrlQueue:
		return fmt.Errorf("%d control frames queued", len(c.ctrl))
	case len(c.hb.arena) > int(c.lim.MaxHeaderListSize):
		return fmt.Errorf("header block arena %d bytes, list limit %d", len(c.hb.arena), c.lim.MaxHeaderListSize)
	}
	*lastMax = c.maxClientID
	for id, s := range c.streams {
		remoteClosed, known := seen[id]
		switch {
		case id != s.id || id%2 == 0 || id > c.maxClientID:
			return fmt.Errorf("stream %d (id %d) in the table, highest client id %d", id, s.id, c.maxClientID)
		case !s.inMap || s.reset != nil:
			return fmt.Errorf("stream %d in the table but closed (reset %v)", id, s.reset)
		case s.localClosed && s.remoteClosed:
			return fmt.Errorf("stream %d closed both ways but still in the table", id)
		case known && remoteClosed && !s.remoteClosed:
			return fmt.Errorf("stream %d: half-closed (remote) went back to open", id)
		case s.recvWindow < 0 || s.recvWindow > maxWindow31:
			return fmt.Errorf("stream %d receive window %d", id, s.recvWindow)
		case s.sendWindow > maxWindow31 || s.sendWindow < -maxWindow31:
			// Negative is legal after the peer lowers
			// SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 §6.9.2); beyond
			// ±2^31-1 it is not.
			return fmt.Errorf("stream %d send window %d", id, s.sendWindow)
		case len(s.rbuf)-s.roff > int(c.lim.InitialStreamWindow):
			return fmt.Errorf("stream %d buffers %d request bytes, window %d", id, len(s.rbuf)-s.roff, c.lim.InitialStreamWindow)
		case len(s.out)-s.outHead > outMax:
			return fmt.Errorf("stream %d queues %d response bytes, limit %d", id, len(s.out)-s.outHead, outMax)
		}
		seen[id] = s.remoteClosed
	}
	for id := range seen {
		if c.streams[id] == nil {
			delete(seen, id) // closed streams never come back: maxClientID only grows
		}
	}
	return nil
}

// FuzzConnInvariants feeds arbitrary frame sequences (after the preface
// and SETTINGS) into a server connection and checks after every frame the
// reader processed: flow-control windows within [0, 2^31-1] (a stream's
// send window within ±2^31-1), stream states moving forward only (ids
// rising, a half-closed stream never reopened, no closed stream in the
// table), and memory bounded (streams, handlers and control frames within
// their limits, buffered request bodies within the stream window, queued
// responses within the output buffer, the header block within the list
// size). Also: no panic, Serve ends.
func FuzzConnInvariants(f *testing.F) {
	frames := func(fn func(fr *http2.Framer, block func(path string) []byte)) []byte {
		var b, hb bytes.Buffer
		fr := http2.NewFramer(&b, nil)
		fr.AllowIllegalWrites = true
		enc := hpack.NewEncoder(&hb)
		fn(fr, func(path string) []byte {
			hb.Reset()
			for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", path}, {":authority", "a"}} {
				enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
			}
			return append([]byte(nil), hb.Bytes()...)
		})
		return b.Bytes()
	}
	f.Add(frames(func(fr *http2.Framer, block func(string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("/echo"), EndHeaders: true})
		fr.WriteData(1, false, bytes.Repeat([]byte("x"), 1000))
		fr.WriteData(1, true, []byte("y"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block("/hold"), EndHeaders: true})
		fr.WriteData(3, false, bytes.Repeat([]byte("z"), 16000))
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: block("/quick"), EndStream: true, EndHeaders: true})
		fr.WriteWindowUpdate(5, 1<<30)
		fr.WriteWindowUpdate(0, 1<<30)
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
		fr.WriteRSTStream(3, http2.ErrCodeCancel)
		fr.WriteData(3, false, []byte("late"))
	}))
	f.Add(frames(func(fr *http2.Framer, block func(string) []byte) {
		fr.WriteWindowUpdate(0, maxWindow31)
		fr.WriteWindowUpdate(0, maxWindow31)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: block("/echo"), EndHeaders: true})
		fr.WriteWindowUpdate(7, maxWindow31)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: block("/echo"), EndStream: true, EndHeaders: true})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block("/quick"), EndStream: true, EndHeaders: true})
	}))
	f.Add(frames(func(fr *http2.Framer, block func(string) []byte) {
		b := block("/hold")
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:2]})
		fr.WriteContinuation(1, false, b[2:3])
		fr.WriteContinuation(1, true, b[3:])
		fr.WriteData(1, false, make([]byte, 16384))
		fr.WriteData(1, false, make([]byte, 16384))
		fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	}))
	f.Fuzz(func(t *testing.T, in []byte) {
		var stats Stats
		pre := []byte(http2.ClientPreface)
		pre = append(pre, seedFrames(func(fr *http2.Framer, _ *hpack.Encoder, _ *bytes.Buffer) { fr.WriteSettings() })...)
		mc := &memConn{r: io.MultiReader(bytes.NewReader(pre), bytes.NewReader(in))}
		lim := Limits{MaxConcurrentStreams: 8, InitialStreamWindow: 32 << 10, MaxHeaderListSize: 8 << 10}
		c := NewConn(mc, lim, invariantHandler, &Options{Stats: &stats})
		seen := map[uint32]bool{}
		var lastMax uint32
		var violation error
		c.afterFrame = func() {
			if violation == nil {
				violation = checkInvariants(c, seen, &lastMax)
			}
		}
		err := c.Serve()
		if violation != nil {
			t.Fatal(violation)
		}
		var ce *ConnError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("Serve = %v", err)
		}
		if n := stats.ConnPanics.Load() + stats.HandlerPanics.Load(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
	})
}

// FuzzHPACKUnderLimits decodes arbitrary header blocks with the
// connection's decoder and limits (list size, field count, table size):
// no panic, and a block is either refused (a COMPRESSION_ERROR or
// ENHANCE_YOUR_CALM) or decoded within the limits: no more fields than
// MaxHeaderFields, a list no larger than MaxHeaderListSize, the arena
// holding no more than the list.
func FuzzHPACKUnderLimits(f *testing.F) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := 0; i < len(getReq); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: getReq[i], Value: getReq[i+1]})
	}
	f.Add(append([]byte(nil), hb.Bytes()...))
	enc.WriteField(hpack.HeaderField{Name: "x-big", Value: string(bytes.Repeat([]byte("v"), 3000))})
	f.Add(append([]byte(nil), hb.Bytes()...))
	// A bomb: one large entry in the table, then many references to it.
	hb.Reset()
	enc.WriteField(hpack.HeaderField{Name: "x-bomb", Value: string(bytes.Repeat([]byte("b"), 1000))})
	bomb := append([]byte(nil), hb.Bytes()...)
	for range 100 {
		bomb = append(bomb, 0x80|62) // indexed: the first dynamic entry
	}
	f.Add(bomb)
	f.Add([]byte{0x3f, 0xe1, 0xff, 0x03}) // table size update beyond the limit
	f.Fuzz(func(t *testing.T, block []byte) {
		lim := Limits{MaxHeaderListSize: 4 << 10, MaxHeaderFields: 20, MaxHeaderTableSize: 4096}
		c := NewConn(&memConn{r: bytes.NewReader(nil)}, lim, invariantHandler, nil)
		c.hb.start(1, true, false, false)
		err := c.decodeFragment(block, true)
		if err == nil {
			if err = c.dec.Close(); err != nil {
				err = connErr(http2.ErrCodeCompression, err.Error())
			}
		}
		hb := &c.hb
		if err != nil {
			var ce *ConnError
			if !errors.As(err, &ce) || (ce.Code != http2.ErrCodeCompression && ce.Code != http2.ErrCodeEnhanceYourCalm) {
				t.Fatalf("refused with %v, want COMPRESSION_ERROR or ENHANCE_YOUR_CALM", err)
			}
			return
		}
		if hb.tooBig != "" {
			t.Fatalf("accepted a block flagged %q", hb.tooBig)
		}
		switch {
		case len(hb.refs) > int(c.lim.MaxHeaderFields):
			t.Fatalf("%d fields decoded, limit %d", len(hb.refs), c.lim.MaxHeaderFields)
		case hb.listSize > c.lim.MaxHeaderListSize:
			t.Fatalf("list size %d accepted, limit %d", hb.listSize, c.lim.MaxHeaderListSize)
		case len(hb.arena) > int(hb.listSize):
			t.Fatalf("arena %d bytes for a list of %d", len(hb.arena), hb.listSize)
		}
	})
}
