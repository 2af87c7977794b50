package accesslog

import (
	"fmt"

	"github.com/sozu-go/sozu/worker/logmask"
)

// Format is an access log format (access_logs_format).
type Format uint8

const (
	Ascii    Format = iota // upstream's one-line layout
	Protobuf               // upstream's length-delimited ProtobufAccessLog
	JSON                   // one ECS-shaped object per line
)

var formatNames = []string{"ascii", "protobuf", "json"}

// ParseFormat reads an access_logs_format value.
func ParseFormat(s string) (Format, error) {
	for i, n := range formatNames {
		if s == n {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("invalid access log format %q: want ascii, protobuf or json", s)
}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", f)
}

// Encoder turns records into bytes. Its fields are set once; it is then
// safe for concurrent use.
type Encoder struct {
	Format  Format
	Query   logmask.QueryMode // what is kept of query strings
	Colored bool              // ANSI colours in the ascii format
	Tag     string            // who logs, upstream's tag (e.g. "WRK-00")
	PID     int
}

// Append appends the encoding of r to dst, at most MaxEncodedRecord
// bytes: a longer one is encoded again with the values the client chose
// and the tags cut (cut.go). It does not allocate when dst has room and
// the record needs no cut.
func (e *Encoder) Append(dst []byte, r *Record) []byte {
	start := len(dst)
	if dst = e.append(dst, r); len(dst)-start <= MaxEncodedRecord {
		return dst
	}
	return e.append(dst[:start], e.cut(r))
}

func (e *Encoder) append(dst []byte, r *Record) []byte {
	switch e.Format {
	case Protobuf:
		return e.appendProtobuf(dst, r)
	case JSON:
		return e.appendJSON(dst, r)
	}
	return e.appendASCII(dst, r)
}
