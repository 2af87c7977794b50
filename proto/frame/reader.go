package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"

	"google.golang.org/protobuf/proto"
)

// initialChunk is the first allocation for a payload larger than the
// retained buffer; the buffer then doubles as bytes arrive (see ReadFrame).
const initialChunk = 4096

// Reader reads frames from a byte stream. It buffers its input, so it may
// read past the end of the current frame; use one Reader per stream for the
// stream's whole life. A Reader is not safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	max     uint64
	buf     []byte
	bounded bool // ReadMessage refuses payloads over CostLimit (cost.go)
}

// NewReader returns a Reader on r that refuses frames longer than max bytes
// (prefix included); max <= 0 selects DefaultMaxSize.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{br: bufio.NewReader(r), max: normMax(max)}
}

// BoundDecodeCost makes ReadMessage refuse, with a *CostError and before
// decoding, a payload that would take more than CostLimit of its size in
// memory once decoded (see DecodeCost). It returns r.
func (r *Reader) BoundDecodeCost() *Reader {
	r.bounded = true
	return r
}

// Max returns the maximum frame length in force.
func (r *Reader) Max() int { return int(r.max) }

// ReadFrame reads one frame and returns its payload (possibly empty). The
// payload aliases the Reader's buffer and is valid only until the next call;
// copy it to keep it.
//
// Errors: io.EOF when the stream ends cleanly between frames;
// io.ErrUnexpectedEOF when it ends inside a prefix or payload;
// *ShortLengthError when the declared length is < PrefixSize (the prefix is
// consumed, as upstream does); *TooLargeError when it exceeds the maximum
// (only the prefix is consumed). Errors of the underlying reader are returned
// as they are. After any error but ShortLengthError the stream is out of
// step and should be closed.
//
// Memory: nothing is allocated for a refused length. For an accepted length
// the buffer grows as payload bytes actually arrive (starting at 4 KiB and
// doubling, never beyond the declared length), so a peer cannot make the
// Reader allocate max bytes by sending a prefix alone. Buffers up to 64 KiB
// are reused between frames.
func (r *Reader) ReadFrame() ([]byte, error) {
	var prefix [PrefixSize]byte
	if _, err := io.ReadFull(r.br, prefix[:]); err != nil {
		return nil, err // io.EOF if nothing was read, io.ErrUnexpectedEOF if part was
	}
	length := binary.LittleEndian.Uint64(prefix[:])
	if length < PrefixSize {
		return nil, &ShortLengthError{Length: length}
	}
	if length > r.max {
		return nil, &TooLargeError{Length: length, Max: r.max}
	}
	return r.readPayload(int(length - PrefixSize))
}

// readPayload reads exactly n bytes into the Reader's buffer, growing it
// only as bytes arrive.
func (r *Reader) readPayload(n int) ([]byte, error) {
	if cap(r.buf) > retainLimit {
		r.buf = nil // drop the buffer grown for the previous, exceptional frame
	}
	if n <= cap(r.buf) {
		b := r.buf[:n]
		if _, err := io.ReadFull(r.br, b); err != nil {
			return nil, eofIsUnexpected(err)
		}
		return b, nil
	}
	b := r.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			c := min(max(2*cap(b), initialChunk), n)
			nb := make([]byte, len(b), c)
			copy(nb, b)
			b = nb
		}
		m, err := r.br.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil && len(b) < n {
			r.buf = b[:0]
			return nil, eofIsUnexpected(err)
		}
	}
	r.buf = b[:0]
	return b, nil
}

// ReadMessage reads one frame and decodes its payload into m, which is reset
// first. Required fields are not enforced (upstream's prost does not enforce
// them either; read fields through the generated getters, which return the
// declared defaults). A payload that does not decode yields a *DecodeError;
// the frame has then been consumed and the next one can be read; so has a
// payload a bounded Reader refuses with a *CostError (BoundDecodeCost).
// Other errors are those of ReadFrame. m does not alias the Reader's buffer.
func (r *Reader) ReadMessage(m proto.Message) error {
	p, err := r.ReadFrame()
	if err != nil {
		return err
	}
	if r.bounded {
		if _, err := DecodeCost(m.ProtoReflect().Descriptor(), p, CostLimit(len(p))); err != nil {
			return err
		}
	}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(p, m); err != nil {
		return &DecodeError{Err: err}
	}
	return nil
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
