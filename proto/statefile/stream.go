package statefile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/sozu-go/sozu/proto/command"
)

// RecordError reports a state-file record that could not be read, or data
// at the end of the file that is not a terminated record. Records before
// Index were read successfully; records after it are not read.
type RecordError struct {
	Index  int   // 0-based record number
	Offset int64 // byte offset of the record's first byte in the file
	Err    error // *SyntaxError, *FieldError, or a framing problem
}

// Error names the record 1-based, for humans:
// "state file record 3 (byte offset 1234): ...".
func (e *RecordError) Error() string {
	return fmt.Sprintf("state file record %d (byte offset %d): %v", e.Index+1, e.Offset, e.Err)
}

// Unwrap returns the underlying error.
func (e *RecordError) Unwrap() error { return e.Err }

// Framing errors wrapped in a RecordError.
var (
	ErrEmptyRecord    = errors.New("empty record (two separators in a row, or whitespace only)")
	ErrUnterminated   = errors.New("record not terminated by a NUL byte (truncated file?)")
	ErrTrailingData   = errors.New("data after the last NUL separator")
	ErrRecordTooLarge = fmt.Errorf("record longer than %d bytes", MaxRecordSize)
)

// Encoder writes records to a state file. It is not safe for concurrent use.
type Encoder struct {
	w   io.Writer
	buf []byte
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes r followed by "\n\x00" in a single Write call. On a Marshal
// error nothing is written. The caller assigns record ids (upstream writes
// SAVE-0, SAVE-1, …).
func (e *Encoder) Encode(r *command.WorkerRequest) error {
	b, err := appendRecord(e.buf[:0], r)
	if err != nil {
		return err
	}
	b = append(b, Separator...)
	if cap(b) <= 64<<10 {
		e.buf = b[:0]
	}
	n, err := e.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// Decoder reads records from a state file one at a time, so that a caller
// can apply the records that precede a bad one, as upstream does. It is not
// safe for concurrent use.
type Decoder struct {
	br    *bufio.Reader
	off   int64 // bytes consumed so far
	index int   // index of the next record
	buf   []byte
	err   error // sticky: returned by every call after the first error
}

// NewDecoder returns a Decoder reading from r; it buffers its input.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{br: bufio.NewReader(r)}
}

// Next returns the next record. It returns io.EOF once the file ends
// cleanly after a separator (an empty file holds no record), and a
// *RecordError for a record that is malformed, empty ("\x00\x00"), longer
// than MaxRecordSize or not terminated by a NUL byte, and for any data after
// the final NUL (even a lone newline). Read errors of the underlying reader
// are returned wrapped with the offset. Once Next has returned an error it
// returns the same error forever.
func (d *Decoder) Next() (*command.WorkerRequest, error) {
	if d.err != nil {
		return nil, d.err
	}
	m, err := d.next()
	if err != nil {
		d.err = err
		return nil, err
	}
	d.index++
	return m, nil
}

func (d *Decoder) next() (*command.WorkerRequest, error) {
	start := d.off
	recErr := func(err error) error { return &RecordError{Index: d.index, Offset: start, Err: err} }
	d.buf = d.buf[:0]
	for {
		chunk, err := d.br.ReadSlice(0)
		d.buf = append(d.buf, chunk...)
		d.off += int64(len(chunk))
		if len(d.buf) > MaxRecordSize+1 { // +1: the NUL
			return nil, recErr(ErrRecordTooLarge)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != io.EOF {
			return nil, fmt.Errorf("reading state file at byte offset %d: %w", d.off, err)
		}
		switch {
		case len(d.buf) == 0:
			return nil, io.EOF
		case len(bytes.TrimLeft(d.buf, " \t\r\n")) == 0:
			return nil, recErr(fmt.Errorf("%w: %q", ErrTrailingData, truncate(d.buf)))
		default:
			return nil, recErr(ErrUnterminated)
		}
	}
	record := d.buf[:len(d.buf)-1]
	if len(bytes.TrimLeft(record, " \t\r\n")) == 0 {
		return nil, recErr(ErrEmptyRecord)
	}
	m := new(command.WorkerRequest)
	if err := Unmarshal(record, m); err != nil {
		return nil, recErr(err)
	}
	return m, nil
}

// truncate shortens b for an error message.
func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
