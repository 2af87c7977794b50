package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/router"
)

// Buffer sizes. A read buffer holds a whole head (http1's default limit)
// with room to spare, so that the head scanner, not the buffer, enforces
// the limit; an output buffer holds a head and a read buffer's worth of body.
const (
	bufSize = http1.DefaultMaxHeadBytes + 4<<10
	outSize = 2*bufSize + http1.ReencodeSlack + http1.DefaultMaxTrailerBytes
)

var (
	bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
	outPool = sync.Pool{New: func() any { b := make([]byte, 0, outSize); return &b }}
	// exchPool keeps the parsed heads and decoders of requests in flight:
	// with their field arrays (6 KiB each), too much for an idle
	// connection to keep.
	exchPool = sync.Pool{New: func() any {
		st := &exchState{reqFields: make([]http1.Field, 0, http1.DefaultMaxFields), respFields: make([]http1.Field, 0, http1.DefaultMaxFields),
			scratch: make([]byte, 0, 512)}
		st.rdec.Response = true
		return st
	}}

	// buffersOut counts the pooled buffers (read, output, exchange states)
	// checked out and not yet given back.
	buffersOut atomic.Int64
)

// BuffersCheckedOut returns how many pooled read and output buffers and
// exchange states the proxy's sessions hold right now, and the read and
// batch buffers of their HTTP/2 connections (h2.BuffersCheckedOut). A
// connection that waits for its next request (or frame) holds none, so
// with only idle connections this is 0.
func BuffersCheckedOut() int64 { return buffersOut.Load() + h2.BuffersCheckedOut() }

// Pooled buffers travel as *[]byte, so that Put does not allocate. Every
// get is matched by exactly one put.
func getBuf() *[]byte { buffersOut.Add(1); return bufPool.Get().(*[]byte) }
func getOut() *[]byte { buffersOut.Add(1); return outPool.Get().(*[]byte) }

func putBuf(p *[]byte) { buffersOut.Add(-1); bufPool.Put(p) }

// putOut returns an output buffer whose latest slice is b (one that grew
// past four times its size is left to the garbage collector).
func putOut(p *[]byte, b []byte) {
	buffersOut.Add(-1)
	if cap(b) <= 4*outSize {
		*p = b[:0]
		outPool.Put(p)
	}
}

// exchState is what a session needs only while a request is in flight:
// the parsed request and response heads (their fields point into the read
// buffers), the body decoders, the fields the proxy adds to a response and
// a frontend's captures.
type exchState struct {
	req        http1.Request
	resp       http1.Response
	dec        http1.ChunkedDecoder // request body
	rdec       http1.ChunkedDecoder // response body
	extra      [10]http1.Field
	caps       router.Captures // of the request, for a frontend's rewrites
	reqFields  []http1.Field   // the field arrays of req and resp
	respFields []http1.Field
	scratch    []byte     // session.scratch while the state is checked out
	bread      polledRead // reads of the response head (idle.go)
	reqHop     hopNames   // the request's Connection options, for its trailers
	respHop    hopNames   // the response's
}

// hopNames keeps a chunked message's Connection options (the names of
// the fields they make hop-by-hop, RFC 9110 §7.6.1) for its trailers,
// which arrive once the buffer its head was read into has been reused.
type hopNames struct {
	buf []byte
	arr [17][]byte // the id field and a head's options, at most 16 (http1)
}

// keep copies the options of tokens that are no hop-by-hop field names
// already (close, keep-alive, upgrade, te: the decoder drops those
// anyway) and returns them after id, the listener's request id field
// (not copied: the listener's configuration keeps it), for
// http1.ChunkedDecoder.Hop: a trailer of that name would reach a backend
// merging trailers into the head (or a client) as the id of the proxy's
// head it was dropped from (appendRequestHead, dropIDField). Most
// messages have no options: no copy.
func (h *hopNames) keep(tokens [][]byte, id []byte) [][]byte {
	names := append(h.arr[:0], id)
	size := 0
	for _, t := range tokens {
		if !http1.IsHopByHop(t) {
			size += len(t)
		}
	}
	if size == 0 {
		return names
	}
	if cap(h.buf) < size {
		h.buf = make([]byte, 0, size)
	}
	h.buf = h.buf[:0]
	for _, t := range tokens {
		if !http1.IsHopByHop(t) {
			at := len(h.buf)
			h.buf = append(h.buf, t...)
			names = append(names, h.buf[at:len(h.buf):len(h.buf)])
		}
	}
	return names
}

// getExch checks out an exchange state with empty heads.
func getExch() *exchState {
	buffersOut.Add(1)
	st := exchPool.Get().(*exchState)
	st.req.Fields, st.resp.Fields = st.reqFields[:0], st.respFields[:0]
	return st
}

// putExch gives st back; the heads, which point into buffers given back
// too, are forgotten (the stale fields in the arrays only point into
// pooled read buffers), and its buffers grown past exchKeep dropped.
func putExch(st *exchState) {
	buffersOut.Add(-1)
	st.req, st.resp = http1.Request{}, http1.Response{}
	st.bread.forget()
	st.shrink()
	exchPool.Put(st)
}

// exchKeep bounds the buffers of an exchange state that grow with a
// request (the values of the fields the proxy adds, with the client's
// X-Forwarded-For and Forwarded chains; a message's Connection options):
// one that grew past it, for a large head, is not kept in the pool,
// where states in use go round under load and would keep it for as long.
const exchKeep = 4 << 10

// shrink drops st's buffers grown past exchKeep (scratch gets a new one
// of its first size). The body decoders keep their trailer buffers,
// which they allocate once at their limit (http1.ChunkedDecoder).
func (st *exchState) shrink() {
	if cap(st.scratch) > exchKeep {
		st.scratch = make([]byte, 0, 512)
	}
	if cap(st.reqHop.buf) > exchKeep {
		st.reqHop.buf = nil
	}
	if cap(st.respHop.buf) > exchKeep {
		st.respHop.buf = nil
	}
}
