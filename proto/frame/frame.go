// Package frame reads and writes the length-prefixed protobuf frames of the
// Sōzu command channel (docs/protocol.md §1.1): 8-byte little-endian total length, then one message.
package frame

import (
	"errors"
	"fmt"
)

// PrefixSize is the size of the length prefix. The prefix holds the total
// frame length, prefix included, so the smallest valid frame is PrefixSize
// bytes long and carries an empty (all-default) message.
const PrefixSize = 8

// DefaultMaxSize is upstream's default max_command_buffer_size: a frame whose
// declared length exceeds it is refused. A frame of exactly this length is
// allowed.
const DefaultMaxSize = 2_000_000

// retainLimit is the largest buffer a Reader or Writer keeps between frames;
// a bigger one, grown for an exceptional frame, is dropped afterwards so an
// idle connection does not pin up to max bytes.
const retainLimit = 64 << 10

// TooLargeError reports a frame whose total length (prefix included) exceeds
// the maximum frame size. Upstream calls it MessageTooLarge.
type TooLargeError struct {
	Length uint64 // declared or computed total frame length
	Max    uint64 // the maximum in force
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("frame length %d exceeds maximum %d", e.Length, e.Max)
}

// ShortLengthError reports a declared frame length smaller than the prefix
// itself. Upstream calls it MessageLengthUnderDelimiter.
type ShortLengthError struct {
	Length uint64 // the declared length, < PrefixSize
}

func (e *ShortLengthError) Error() string {
	return fmt.Sprintf("frame length %d is shorter than the %d-byte length prefix", e.Length, PrefixSize)
}

// DecodeError reports a complete frame whose payload is not a valid protobuf
// encoding of the expected message. Upstream calls it InvalidProtobufMessage.
type DecodeError struct {
	Err error // the protobuf decoder's error
}

func (e *DecodeError) Error() string {
	return "frame payload is not a valid protobuf message: " + e.Err.Error()
}

// Unwrap returns the protobuf decoder's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// IsFrameError reports whether err is, or wraps, one of the typed frame
// errors (TooLargeError, ShortLengthError, DecodeError, CostError): a peer that sent
// such a frame broke the protocol, as opposed to an I/O failure or EOF.
func IsFrameError(err error) bool {
	var tl *TooLargeError
	var sl *ShortLengthError
	var de *DecodeError
	var ce *CostError
	return errors.As(err, &tl) || errors.As(err, &sl) || errors.As(err, &de) || errors.As(err, &ce)
}

// normMax turns a caller's max argument into the limit in force: a value
// <= 0 selects DefaultMaxSize.
func normMax(max int) uint64 {
	if max <= 0 {
		return DefaultMaxSize
	}
	return uint64(max)
}
