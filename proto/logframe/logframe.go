// Package logframe is the framing of the log channel from a worker to the
// supervisor: a SOCK_SEQPACKET socket whose every packet is a batch of
// records, each a kind byte, a uvarint length and the record's bytes.
package logframe

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kinds of record.
const (
	Main   byte = 1 // one line of the worker's main log
	Access byte = 2 // one access log record, already encoded

	// AccessFile is the one message that goes the other way, supervisor
	// to worker, alone in its packet and only to a worker that writes its
	// access log file itself: this byte, with the reopened file's
	// descriptor as SCM_RIGHTS.
	AccessFile byte = 'A'
)

// MaxPacket bounds a packet; a record that cannot fit one is never sent.
const MaxPacket = 128 << 10

// MaxRecord is the largest record a packet can carry.
const MaxRecord = MaxPacket - 1 - binary.MaxVarintLen32

// ErrShort is returned for a packet that ends inside a record.
var ErrShort = errors.New("logframe: packet ends inside a record")

// Append appends one record of kind to dst.
func Append(dst []byte, kind byte, rec []byte) []byte {
	dst = append(dst, kind)
	dst = binary.AppendUvarint(dst, uint64(len(rec)))
	return append(dst, rec...)
}

// lenWidth is the width of the length Reserve leaves for Seal: a uvarint
// padded with continuation bytes (0x80 | bits) to three bytes, which Next
// reads like any other (binary.Uvarint accepts a non-minimal encoding),
// enough for every record up to 2 MiB > MaxRecord.
const lenWidth = 3

// Reserve begins a record of kind at the end of dst, for a writer that
// appends the record's bytes in place (no copy): it appends the kind and
// room for the length, and returns dst and where the record begins. Seal
// writes the length once the bytes are appended.
func Reserve(dst []byte, kind byte) ([]byte, int) {
	return append(dst, kind, 0x80, 0x80, 0), len(dst)
}

// Seal ends the record Reserve began at start in p (everything after it
// is the record): it writes the record's length and returns it. A record
// longer than MaxRecord is not sealed: the caller must cut p back to
// start.
func Seal(p []byte, start int) (int, error) {
	n := len(p) - start - 1 - lenWidth
	if n < 0 || n > MaxRecord {
		return n, fmt.Errorf("logframe: record of %d bytes", n)
	}
	l := p[start+1 : start+1+lenWidth]
	l[0], l[1], l[2] = 0x80|byte(n), 0x80|byte(n>>7), byte(n>>14)
	return n, nil
}

// Size is how many bytes Append adds for a record of n bytes.
func Size(n int) int {
	var b [binary.MaxVarintLen64]byte
	return 1 + binary.PutUvarint(b[:], uint64(n)) + n
}

// Next splits the first record off p: its kind, its bytes (a sub-slice of
// p) and the rest of p.
func Next(p []byte) (kind byte, rec, rest []byte, err error) {
	if len(p) < 2 {
		return 0, nil, nil, ErrShort
	}
	kind = p[0]
	if kind != Main && kind != Access {
		return 0, nil, nil, fmt.Errorf("logframe: unknown record kind %d", kind)
	}
	n, k := binary.Uvarint(p[1:])
	if k <= 0 || n > uint64(len(p)-1-k) {
		return 0, nil, nil, ErrShort
	}
	rec = p[1+k : 1+k+int(n)]
	return kind, rec, p[1+k+int(n):], nil
}
