package accesslog

import (
	"strconv"
	"unicode/utf8"

	"github.com/sozu-go/sozu/worker/logmask"
)

// MaxEncodedRecord bounds an encoded record, in every format: one UDP
// datagram carries it (65 507 bytes of payload over IPv4, for udp://
// targets), and so does a log packet (logframe.MaxRecord). A record that
// would be longer is encoded again with what the client chose and the
// frontend's tags cut (Encoder.Append), rather than dropped: otherwise a
// client sending a long head of bytes the encoding escapes (JSON writes
// a control byte in six) would leave no record of its request.
const MaxEncodedRecord = 60 << 10

const (
	// maxCutField is what a cut record keeps of each value the client
	// chose (method, host, target, user agent), and every record of the
	// TLS server name: bytes after masking, before encoding (six times as
	// many at most, in JSON). A legitimate server name is 253 bytes at
	// most.
	maxCutField = 1024
	// maxCutTags bounds every encoding of a cut record's tags.
	maxCutTags = 8 << 10
)

// cutMark ends a value that was cut.
const cutMark = "…"

// cut returns r with what a client chose masked (as every format masks
// it) then cut to maxCutField bytes, and its tags to maxCutTags.
// Masking comes first so that a cut never leaves more of a PAN in view
// than masking would. It allocates: records that need it are rare.
func (e *Encoder) cut(r *Record) *Record {
	c := *r
	c.Method = cutValue(logmask.AppendPANMasked(nil, r.Method))
	c.Host = cutValue(logmask.AppendHostMasked(nil, r.Host))
	c.Target = cutValue(logmask.AppendTarget(nil, r.Target, e.Query))
	c.UserAgent = cutValue(logmask.AppendPANMasked(nil, r.UserAgent))
	c.Tags = r.Tags.cut()
	return &c
}

// cutValue returns b cut to maxCutField bytes, on a character boundary
// when b is UTF-8 there, followed by cutMark; b when it is no longer.
func cutValue(b []byte) []byte {
	if len(b) <= maxCutField {
		return b
	}
	i := maxCutField
	for k := 0; k < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(b[i]); k++ {
		i--
	}
	return append(b[:i:i], cutMark...)
}

// cutTags returns the tags of t (whose sorted keys are keys) to write in
// a cut record: the first tags, by key, whose encodings all fit in
// maxCutTags, and a tag "…" saying how many were left out.
func cutTags(t *Tags, keys []string) *Tags {
	const markRoom = 64 // the "…" tag, and its separators
	m := map[string]string{}
	var ascii, json, proto int
	n := 0
	for ; n < len(keys); n++ {
		one := newTags(map[string]string{keys[n]: t.m[keys[n]]}, []string{keys[n]})
		ascii += len(one.ascii) + 2 // ", "
		json += len(one.json) - 1   // less one brace: a comma instead
		proto += len(one.proto)
		if max(ascii, json, proto)+markRoom > maxCutTags {
			break
		}
		m[keys[n]] = t.m[keys[n]]
	}
	m[cutMark] = strconv.Itoa(len(keys)-n) + " more"
	return NewTags(m)
}

// cut returns the tags to write in a cut record (nil for none).
func (t *Tags) cut() *Tags {
	if t == nil || t.short == nil {
		return t
	}
	return t.short
}
