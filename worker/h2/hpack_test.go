package h2

import (
	"fmt"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestVolatileFieldNotIndexed: a response field whose value changes on
// every response (a request id) stops being added to the peer's HPACK
// table after a few responses (sent never indexed), so that it no longer
// evicts the steady fields, which then go out as one-byte indices.
func TestVolatileFieldNotIndexed(t *testing.T) {
	var n atomic.Int64
	h := HandlerFunc(func(s *Stream) {
		id := fmt.Sprintf("01JEXAMPLEREQUESTID%07d", n.Add(1))
		s.WriteHeader(200, []HeaderField{
			{Name: []byte("content-type"), Value: []byte("text/plain")},
			{Name: []byte("server"), Value: []byte("origin/1.2.3")},
			{Name: []byte("x-request-id"), Value: []byte(id)},
			{Name: []byte("etag"), Value: []byte(`"5f3c-267"`)},
		})
		s.Close()
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	dec := hpack.NewDecoder(4096, nil)
	var last []hpack.HeaderField
	var lastLen int
	for i := range 40 {
		id := uint32(2*i + 1)
		rc.get(id, true)
		rc.waitFor("response HEADERS", func(f http2.Frame) bool {
			hf, ok := f.(*http2.HeadersFrame)
			if !ok || hf.StreamID != id {
				return false
			}
			fields, err := dec.DecodeFull(hf.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			last, lastLen = fields, len(hf.HeaderBlockFragment())
			return true
		})
	}
	for _, f := range last {
		if f.Name == "x-request-id" && !f.Sensitive {
			t.Errorf("x-request-id still sent for indexing after 40 responses")
		}
	}
	// :status, content-type, server and etag indexed (1 byte each), the
	// request id a literal with an indexed name (~2 + 21 bytes, Huffman).
	if lastLen > 40 {
		t.Errorf("steady-state header block %d bytes: %v", lastLen, last)
	}
}
