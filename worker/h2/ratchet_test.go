package h2

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Ratchets: what an idle connection keeps of the largest frame or header
// block it read. Each test opens connections that each send one request,
// an ordinary one or one with a large part, then stay idle, and compares
// the heap each one holds then (idleHeapAfter): the large part must leave
// no more behind than ratchetMargin.

// ratchetMargin bounds what a large request may leave on an idle
// connection beyond what an ordinary one leaves, in KiB.
const ratchetMargin = 2.0

// idleHeapAfter opens connections that each write the bytes frames(rc)
// makes of stream 1's request (a GET), read its response, and stay idle;
// it returns the heap each one holds then (client included), in KiB.
func idleHeapAfter(t *testing.T, frames func(rc *rawClient) []byte) float64 {
	return idleHeapAfterWith(t, helloHandler, frames)
}

// idleHeapAfterWith is idleHeapAfter with the handler h.
func idleHeapAfterWith(t *testing.T, h Handler, frames func(rc *rawClient) []byte) float64 {
	ts := startServer(t, Limits{}, h, nil, nil)
	const n = 100
	rcs := make([]*rawClient, 0, n)
	ins := make([][]byte, n)
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		rc := dialRaw(t, ts.addr)
		ins[i] = frames(rc)
		if _, err := rc.nc.Write(ins[i]); err != nil {
			t.Fatal(err)
		}
		ins[i] = nil
		rc.waitFor("the response", streamsEnded(1))
		// The client's Framer keeps the largest frame it read: what it
		// kept is not the server's.
		rc.fr = http2.NewFramer(rc.nc, rc.nc)
		rcs = append(rcs, rc)
	}
	waitCond(t, "no buffer checked out by idle connections", func() bool { return BuffersCheckedOut() == 0 })
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(rcs)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n / 1024
}

// frameBytes is a frame as bytes: its header, then payload.
func frameBytes(typ http2.FrameType, flags http2.Flags, id uint32, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), byte(typ), byte(flags), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, payload...)
}

// blockFrames returns the header block of a GET with fields after the
// pseudo-headers, never indexed (the decoder's table stays empty), as a
// HEADERS frame and CONTINUATIONs of at most frag bytes each.
func blockFrames(id uint32, frag int, fields ...string) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	all := append(append([]string(nil), getReq...), fields...)
	for i := 0; i+1 < len(all); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: all[i], Value: all[i+1], Sensitive: true})
	}
	block := hb.Bytes()
	first := block[:min(frag, len(block))]
	block = block[len(first):]
	var flags http2.Flags = http2.FlagHeadersEndStream
	if len(block) == 0 {
		flags |= http2.FlagHeadersEndHeaders
	}
	out := frameBytes(http2.FrameHeaders, flags, id, first)
	for len(block) > 0 {
		p := block[:min(frag, len(block))]
		block = block[len(p):]
		var fl http2.Flags
		if len(block) == 0 {
			fl = http2.FlagContinuationEndHeaders
		}
		out = append(out, frameBytes(http2.FrameContinuation, fl, id, p)...)
	}
	return out
}

// ordinaryGet is a GET with a user agent, in one HEADERS frame.
func ordinaryGet(*rawClient) []byte { return blockFrames(1, 16384, "user-agent", "curl/8.5") }

func checkRatchet(t *testing.T, what string, large func(rc *rawClient) []byte) {
	t.Helper()
	if raceEnabled {
		t.Skip("the race detector drops pooled objects at random: heap figures are noise")
	}
	base, got := idleHeapAfter(t, ordinaryGet), idleHeapAfter(t, large)
	t.Logf("heap per idle connection (both ends): after an ordinary GET %.2f KiB, after %s %.2f KiB (+%.2f)", base, what, got, got-base)
	if got > base+ratchetMargin {
		t.Errorf("an idle connection holds %.2f KiB after %s, %.2f after an ordinary GET: it keeps what it read", got, what, base)
	}
}

// TestIdleConnectionDropsLargeFrameBufferAnyType: an idle connection
// that read a frame of 16 KiB other than DATA (here one of an unknown
// type, ignored) keeps no frame buffer that large.
func TestIdleConnectionDropsLargeFrameBufferAnyType(t *testing.T) {
	checkRatchet(t, "a 16 KiB frame of an unknown type", func(rc *rawClient) []byte {
		return append(frameBytes(0xfa, 0, 0, make([]byte, 16384)), ordinaryGet(rc)...)
	})
}

// TestIdleConnectionDropsLargeHeaderBlock: an idle connection that read a
// large request head (12 KiB of fields in one HEADERS frame, no field
// across frames) keeps none of its arrays.
func TestIdleConnectionDropsLargeHeaderBlock(t *testing.T) {
	var fields []string
	for i := range 100 {
		fields = append(fields, "x-f", strings.Repeat(string(rune('a'+i%26)), 120))
	}
	checkRatchet(t, "a 12 KiB head of 100 fields", func(*rawClient) []byte {
		return blockFrames(1, 16384, fields...)
	})
}

// TestIdleConnectionDropsSplitFieldBuffer: an idle connection that read a
// header block whose one large field spans CONTINUATION frames (the HPACK
// decoder kept the field's start until the rest came) keeps nothing of it.
func TestIdleConnectionDropsSplitFieldBuffer(t *testing.T) {
	checkRatchet(t, "a 12 KiB field across CONTINUATIONs", func(*rawClient) []byte {
		// Frames of 1 KiB: the frame buffer kept (maxKeptFrame) is not at stake.
		return blockFrames(1, 1024, "x-big", strings.Repeat("v", 12<<10))
	})
}

// TestIdleConnectionDropsLargeResponseHead: an idle connection that sent
// a response head of 100 fields (11 KiB) keeps nothing of it (its
// encoding buffer is kept up to maxKeptBlock only).
func TestIdleConnectionDropsLargeResponseHead(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled objects at random: heap figures are noise")
	}
	var fields []HeaderField
	for i := range 100 {
		fields = append(fields, HeaderField{Name: []byte("x-resp"), Value: bytes.Repeat([]byte{byte('a' + i%26)}, 100)})
	}
	many := HandlerFunc(func(s *Stream) {
		s.WriteHeader(200, fields)
		s.Write([]byte("hello"))
		s.Close()
	})
	base, got := idleHeapAfter(t, ordinaryGet), idleHeapAfterWith(t, many, ordinaryGet)
	t.Logf("heap per idle connection (both ends): after an ordinary response %.2f KiB, after a response head of 100 fields %.2f KiB (+%.2f)", base, got, got-base)
	if got > base+ratchetMargin {
		t.Errorf("an idle connection holds %.2f KiB after a large response head, %.2f after an ordinary one", got, base)
	}
}

// TestWholeRepsSplitAnywhere: a header block cut anywhere into two
// fragments decodes as it does whole, the decoder given only whole
// representations before the last fragment (its Close finds no part of
// one kept), and a string length over the limit is refused at once, as
// the decoder refuses it when given the whole block.
func TestWholeRepsSplitAnywhere(t *testing.T) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	enc.SetMaxDynamicTableSizeLimit(4096)
	enc.SetMaxDynamicTableSize(1024) // a size update first
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/" + strings.Repeat("p", 300)},
		{Name: ":authority", Value: "localhost"}, {Name: "user-agent", Value: "agent"}, {Name: "user-agent", Value: "agent"},
		{Name: "cookie", Value: strings.Repeat("c=1; ", 40), Sensitive: true}, {Name: "x-new-name", Value: "huffman value"},
		{Name: "x-long-value", Value: strings.Repeat("v", 200)},
	} {
		enc.WriteField(f)
	}
	block := hb.Bytes()
	decode := func(frags ...[]byte) ([]string, error) {
		c := NewConn(&memConn{r: bytes.NewReader(nil)}, Limits{}, helloHandler, nil)
		c.hb.start(1, true, false, false)
		for i, p := range frags {
			last := i == len(frags)-1
			if err := c.decodeFragment(p, last); err != nil {
				return nil, err
			}
			if !last && len(c.hb.part) > 0 {
				// The decoder holds no part of a representation.
				if err := c.dec.Close(); err != nil {
					t.Fatalf("cut at %d: the decoder kept a part of a representation: %v", len(frags[0]), err)
				}
			}
		}
		if err := c.dec.Close(); err != nil {
			return nil, err
		}
		var out []string
		for _, r := range c.hb.refs {
			out = append(out, string(c.hb.arena[r.off:r.off+r.nlen])+": "+string(c.hb.arena[r.off+r.nlen:r.off+r.nlen+r.vlen]))
		}
		return out, nil
	}
	want, err := decode(block)
	if err != nil || len(want) != 9 {
		t.Fatalf("whole block: %v, %q", err, want)
	}
	for k := 0; k <= len(block); k++ {
		got, err := decode(block[:k:k], block[k:])
		if err != nil || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("cut at %d: %v, %q", k, err, got)
		}
	}
	// A literal whose value's length no block could hold: refused with
	// the first fragment, whose bytes do not complete it.
	c := NewConn(&memConn{r: bytes.NewReader(nil)}, Limits{}, helloHandler, nil)
	c.hb.start(1, true, false, false)
	huge := []byte{0x00, 0x01, 'x', 0x7f, 0xff, 0xff, 0x7f, 'v'}
	if err := c.decodeFragment(huge, false); err == nil {
		t.Fatal("a string length over the limit accepted, to wait for more")
	}
}

// TestControlBacklogNotKept: once the writer has written a backlog of
// control frames (a peer that did not read while it sent PINGs), the
// connection keeps no queue that large.
func TestControlBacklogNotKept(t *testing.T) {
	c := NewConn(&memConn{r: bytes.NewReader(nil)}, Limits{}, helloHandler, nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range maxCtrlQueue - 1 {
		c.queueCtrlLocked(ctrlFrame{kind: cPingAck, data: [8]byte{byte(i)}})
	}
	c.wbuf.start()
	c.fillBatchLocked()
	c.wbuf.done()
	if n := cap(c.ctrl); n > keptCtrl {
		t.Fatalf("the control queue keeps room for %d frames (%d B) once written, want at most %d", n, n*int(unsafe.Sizeof(ctrlFrame{})), keptCtrl)
	}
}

// TestIdleConnectionHPACKTable logs what a connection whose peer filled
// the HPACK decoder's dynamic table (4096 bytes, the most it offers) keeps
// of it while idle: the table is the peer's to refer to, kept for the
// connection's life by design (docs/architecture.md).
func TestIdleConnectionHPACKTable(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled objects at random: heap figures are noise")
	}
	fill := func(*rawClient) []byte {
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for i := 0; i+1 < len(getReq); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: getReq[i], Value: getReq[i+1], Sensitive: true})
		}
		// Entries of 34 bytes (two-byte names, empty values), the least
		// an entry may weigh: 120 of them fill the table.
		for i := range 120 {
			enc.WriteField(hpack.HeaderField{Name: string([]byte{'a' + byte(i/26), 'a' + byte(i%26)})})
		}
		return frameBytes(http2.FrameHeaders, http2.FlagHeadersEndStream|http2.FlagHeadersEndHeaders, 1, hb.Bytes())
	}
	base, got := idleHeapAfter(t, ordinaryGet), idleHeapAfter(t, fill)
	t.Logf("heap per idle connection (both ends): after an ordinary GET %.2f KiB, after filling the HPACK table with 120 entries %.2f KiB (+%.2f)", base, got, got-base)
	if got-base > 10 {
		t.Errorf("a full HPACK table costs %.2f KiB per idle connection, more than docs/architecture.md says", got-base)
	}
}

// FuzzWholeReps: a header block cut anywhere into two fragments decodes
// as it does whole, whatever its bytes: refused both ways, or the same
// fields (wholeReps gives the decoder only whole representations before
// the last fragment, the same bytes in the same order).
func FuzzWholeReps(f *testing.F) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := 0; i+1 < len(getReq); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: getReq[i], Value: getReq[i+1]})
	}
	enc.WriteField(hpack.HeaderField{Name: "x-long", Value: strings.Repeat("v", 300)})
	enc.WriteField(hpack.HeaderField{Name: "cookie", Value: "a=1", Sensitive: true})
	f.Add(append([]byte(nil), hb.Bytes()...), uint16(7))
	f.Add([]byte{0x3f, 0xe1, 0x1f, 0x82}, uint16(2))                       // a size update, then a field
	f.Add([]byte{0x00, 0x01, 'x', 0x7f, 0xff, 0xff, 0x7f, 'v'}, uint16(5)) // a value length over the limit
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint16(4))
	f.Fuzz(func(t *testing.T, block []byte, cut uint16) {
		k := int(cut) % (len(block) + 1)
		decode := func(frags ...[]byte) (string, bool) {
			c := NewConn(&memConn{r: bytes.NewReader(nil)}, Limits{MaxHeaderListSize: 4 << 10, MaxHeaderFields: 20}, invariantHandler, nil)
			c.hb.start(1, true, false, false)
			for i, p := range frags {
				if err := c.decodeFragment(p, i == len(frags)-1); err != nil {
					return "", false
				}
			}
			if c.dec.Close() != nil || c.hb.tooBig != "" {
				return "", false
			}
			var out strings.Builder
			for _, r := range c.hb.refs {
				out.Write(c.hb.arena[r.off : r.off+r.nlen+r.vlen])
				out.WriteByte('\n')
			}
			return out.String(), true
		}
		whole, ok := decode(block)
		split, splitOK := decode(block[:k:k], block[k:])
		if ok != splitOK || whole != split {
			t.Fatalf("cut at %d: %q (%v) whole, %q (%v) split", k, whole, ok, split, splitOK)
		}
	})
}
