// Package statefile reads and writes upstream Sōzu's JSON state file (docs/protocol.md §4):
// serde_json renderings of WorkerRequest records, each followed by "\n\x00".
//
// The format is not protojson. Keys are the exact .proto field names in
// declaration order; every field is written (unset optional ones as null,
// unset required ones with their declared default); enums are integers;
// 64-bit integers are plain JSON numbers, decoded exactly; bytes are arrays of
// integers; maps are objects with sorted keys; a oneof is one key named after
// the oneof whose value is {"<FIELD NAME IN UPPER CASE>": value}, or null.
// Output is compact, with only '"', '\\' and control characters escaped, so
// upstream reads our files and we read upstream's, byte for byte.
//
// Decoding is as strict as upstream's: a required field, or a repeated or map
// field (apart from the few upstream defaults, see defaultWhenMissing), that
// is missing or null rejects the record. Unknown keys are ignored. Two
// choices go beyond upstream: an enum number that command.proto does not
// define is refused (Go proto2 enums are closed; upstream would keep the
// number), and strings must be valid UTF-8 on both sides (upstream's Rust
// strings always are). float and double fields are not supported; none
// exists in command.proto.
package statefile

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// MaxRecordSize is the largest record, in bytes without its separator, that
// Marshal produces and a Decoder accepts. Upstream reads state files through
// a 200 000-byte buffer and may fail on records above ~100 000 bytes, so
// records meant for upstream should stay well below this limit.
const MaxRecordSize = 1 << 20

// Separator follows every record in a state file, the last one included.
const Separator = "\n\x00"

// FieldError reports a value that cannot be encoded or decoded, with its
// location in the record: "content.request_type.ADD_CLUSTER.cluster_id",
// "...headers[0].key", "...tags[\"env\"]".
type FieldError struct {
	Path string // dotted path from the record root; "" for the root itself
	Msg  string // what is wrong
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Marshal returns the JSON record for r, without separator. It fails with a
// *FieldError on a string that is not valid UTF-8 or an enum number that
// command.proto does not define (so that everything written can be read
// back), and when the record exceeds MaxRecordSize. r must not be nil.
func Marshal(r *command.WorkerRequest) ([]byte, error) {
	return appendRecord(nil, r)
}

func appendRecord(dst []byte, r *command.WorkerRequest) ([]byte, error) {
	if r == nil {
		return dst, fmt.Errorf("statefile: cannot marshal a nil WorkerRequest")
	}
	e := encoder{buf: dst}
	start := len(dst)
	if err := e.message(r.ProtoReflect(), nil, 0); err != nil {
		return dst, err
	}
	if n := len(e.buf) - start; n > MaxRecordSize {
		return dst, fmt.Errorf("state file record %q is %d bytes, over the %d-byte limit", r.GetId(), n, MaxRecordSize)
	}
	return e.buf, nil
}

// Unmarshal decodes one JSON record (surrounding whitespace allowed, no
// separator) into r, which must not be nil. On error r is left unchanged;
// the error is a *SyntaxError for malformed JSON or a *FieldError naming the
// offending field.
func Unmarshal(data []byte, r *command.WorkerRequest) error {
	v, err := parseJSON(data)
	if err != nil {
		return err
	}
	tmp := new(command.WorkerRequest)
	if err := (decoder{}).message(&v, tmp.ProtoReflect(), nil); err != nil {
		return err
	}
	proto.Reset(r)
	proto.Merge(r, tmp)
	return nil
}
