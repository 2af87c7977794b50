package h2

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

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
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
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
