package frame

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"
)

// marshalOptions matches prost's output for the same message: required
// fields are written when set (our callers set them, see docs/protocol.md
// §3.3), map entries in key order.
var marshalOptions = proto.MarshalOptions{AllowPartial: true, Deterministic: true}

// AppendFrame appends the frame of m (prefix and payload) to dst and returns
// the extended slice. A frame longer than max bytes (max <= 0 selects
// DefaultMaxSize) yields a *TooLargeError and dst unchanged. Marshalling is
// deterministic and does not check required fields. dst may be nil.
func AppendFrame(dst []byte, m proto.Message, max int) ([]byte, error) {
	limit := normMax(max)
	size := marshalOptions.Size(m)
	length := uint64(PrefixSize) + uint64(size)
	if length > limit {
		return dst, &TooLargeError{Length: length, Max: limit}
	}
	start := len(dst)
	out := binary.LittleEndian.AppendUint64(dst, length)
	out = slices.Grow(out, size) // one allocation, at most
	opts := marshalOptions
	opts.UseCachedSize = true
	out, err := opts.MarshalAppend(out, m)
	if err != nil {
		return dst[:start], fmt.Errorf("marshalling %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	if got := len(out) - start; uint64(got) != length {
		// Only possible if m was modified while being marshalled.
		return dst[:start], fmt.Errorf("marshalling %s: size changed from %d to %d bytes during encoding",
			m.ProtoReflect().Descriptor().FullName(), length, got)
	}
	return out, nil
}

// WriteMessage writes the frame of m to w in a single Write call, so writers
// that share w under a mutex always produce whole frames. A frame longer than
// max (max <= 0 selects DefaultMaxSize) yields a *TooLargeError and nothing
// is written. A short write without an error reports io.ErrShortWrite.
func WriteMessage(w io.Writer, m proto.Message, max int) error {
	b, err := AppendFrame(nil, m, max)
	if err != nil {
		return err
	}
	return writeAll(w, b)
}

// Writer writes frames to one stream. It is safe for concurrent use: each
// WriteMessage call emits one whole frame in one Write call on the
// underlying writer, and calls are serialised.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	max int
	buf []byte
}

// NewWriter returns a Writer on w that refuses frames longer than max bytes
// (max <= 0 selects DefaultMaxSize).
func NewWriter(w io.Writer, max int) *Writer {
	return &Writer{w: w, max: int(normMax(max))}
}

// WriteMessage writes the frame of m; see the package-level WriteMessage.
// The encoding buffer is reused between calls (up to 64 KiB).
func (w *Writer) WriteMessage(m proto.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, err := AppendFrame(w.buf[:0], m, w.max)
	if cap(b) <= retainLimit {
		w.buf = b[:0]
	} else {
		w.buf = nil
	}
	if err != nil {
		return err
	}
	return writeAll(w.w, b)
}

// Marshal returns the payload of m as AppendFrame encodes it
// (deterministic, required fields not checked), without the prefix: for a
// message sent inside others, encoded once (see WriteParts).
func Marshal(m proto.Message) ([]byte, error) {
	return marshalOptions.Marshal(m)
}

// WriteParts writes one frame whose payload is parts, one after the other
// (an encoded message cut in pieces the caller already holds, such as a
// shared sub-message and the few bytes around it), without copying them
// into one buffer: a writev where w supports it. A frame longer than max
// (<= 0: DefaultMaxSize) is a *TooLargeError and nothing is written. Unlike
// WriteMessage, the frame may take several writes: w must have no other
// writer meanwhile.
func WriteParts(w io.Writer, max int, parts ...[]byte) error {
	limit := normMax(max)
	length := uint64(PrefixSize)
	for _, p := range parts {
		length += uint64(len(p))
	}
	if length > limit {
		return &TooLargeError{Length: length, Max: limit}
	}
	bufs := make(net.Buffers, 0, 1+len(parts))
	bufs = append(bufs, binary.LittleEndian.AppendUint64(nil, length))
	for _, p := range parts {
		if len(p) > 0 {
			bufs = append(bufs, p)
		}
	}
	_, err := bufs.WriteTo(w)
	return err
}

func writeAll(w io.Writer, b []byte) error {
	n, err := w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}
