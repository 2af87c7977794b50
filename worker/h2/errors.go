package h2

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/net/http2"
)

// ConnError is an HTTP/2 connection error (RFC 9113 §5.4.1): the connection
// was ended with GOAWAY carrying Code. Serve returns it when the peer broke
// the protocol or a limit.
type ConnError struct {
	Code   http2.ErrCode
	Reason string
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("h2: connection error %v: %s", e.Code, e.Reason)
}

// StreamError is an HTTP/2 stream error (RFC 9113 §5.4.2): the stream was
// reset with RST_STREAM carrying Code, by the peer (Remote) or by us. A
// Stream's Read and Write return it once the stream is reset.
type StreamError struct {
	StreamID uint32
	Code     http2.ErrCode
	Remote   bool
	Reason   string
}

func (e *StreamError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	return fmt.Sprintf("h2: stream %d reset by %s: %v %s", e.StreamID, who, e.Code, e.Reason)
}

// ErrConnClosed is returned by Stream methods once the connection is gone.
var ErrConnClosed = errors.New("h2: connection closed")

// ErrBadResponse is returned by Stream writes issued out of order (body
// before WriteHeader is fine: it implies status 200; anything after Close or
// trailers is not).
var ErrBadResponse = errors.New("h2: response already complete")

func connErr(code http2.ErrCode, reason string) *ConnError {
	return &ConnError{Code: code, Reason: reason}
}

func calm(reason string) *ConnError { return connErr(http2.ErrCodeEnhanceYourCalm, reason) }

// streamErr is the reader's internal stream-error value: the stream gets
// RST_STREAM(code) and the connection carries on.
type streamErr struct {
	id     uint32
	code   http2.ErrCode
	reason string
}

func (e streamErr) Error() string { return fmt.Sprintf("stream %d: %v: %s", e.id, e.code, e.reason) }

// glitchErr is a stream error that also counts toward the glitch budget
// (h2_max_glitch_count): a frame on a stream no longer open, as upstream
// counts its stream-close races, or a stream refused while handlers of
// closed ones still run. Other stream errors a peer provokes (a malformed
// request, a content-length mismatch, a zero WINDOW_UPDATE on an open
// stream…) count toward h2_max_rst_stream_emitted_lifetime only.
type glitchErr struct{ streamErr }

// Stats are process-wide counters a Conn increments; all fields are safe for
// concurrent use. A nil *Stats is allowed everywhere.
type Stats struct {
	Conns          atomic.Uint64 // connections served
	Streams        atomic.Uint64 // streams handed to a Handler
	ConnPanics     atomic.Uint64 // panics recovered in a connection's loops
	HandlerPanics  atomic.Uint64 // panics recovered in a Handler
	CalmGoAways    atomic.Uint64 // GOAWAY(ENHANCE_YOUR_CALM) sent
	ProtocolGoAway atomic.Uint64 // other GOAWAYs with an error code
	StreamResets   atomic.Uint64 // RST_STREAM sent with an error code
	ReapedStreams  atomic.Uint64 // streams reset for idleness or stall
	ActiveStreams  atomic.Int64  // streams whose handler is running now

	// Floods counts the calm GOAWAYs (also in CalmGoAways) by the flood
	// budget broken, indexed by FloodClass (floods.go).
	Floods [NumFloodClasses]atomic.Uint64
	// Kinds counts the same GOAWAYs by upstream's finer violation kind,
	// indexed by ViolationKind (Kinds[KindNone] stays 0).
	Kinds [NumViolationKinds]atomic.Uint64
}

func (s *Stats) inc(f func(*Stats) *atomic.Uint64) {
	if s != nil {
		f(s).Add(1)
	}
}

// ErrReadStopped is returned by Stream.Read after Stream.StopReading.
var ErrReadStopped = errors.New("h2: request body reading stopped by the handler")
