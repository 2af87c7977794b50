package accesslog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/logmask"
)

// TestLongRecordIsCutNotLost: a record whose encoding would pass
// MaxEncodedRecord (a head of bytes JSON writes in six, an HTTP/2 header
// block of 64 KiB) is encoded again with the values the client chose cut
// to maxCutField bytes and a "…", in every format, and still reads as
// one record. The values are masked before the cut: a PAN the cut
// crosses shows no more of itself than masking would (twelve of its
// digits would otherwise stay in view, too few to be masked).
func TestLongRecordIsCutNotLost(t *testing.T) {
	long := func(prefix string) []byte {
		return append([]byte(prefix+strings.Repeat("a", maxCutField-12-len(prefix))+"4111111111111111"), bytes.Repeat([]byte{1}, 60<<10)...)
	}
	for _, f := range []Format{Ascii, JSON, Protobuf} {
		for _, q := range []logmask.QueryMode{logmask.QueryMask, logmask.QueryKeep} {
			r := httpRecord()
			r.Status = 0
			r.Method, r.Host, r.Target, r.UserAgent = long("M"), long("h"), long("/p"), long("ua")
			b := (&Encoder{Format: f, Query: q, Tag: "WRK-00"}).Append(nil, r)
			if len(b) > MaxEncodedRecord {
				t.Errorf("%v %v: %d bytes, over %d", f, q, len(b), MaxEncodedRecord)
			}
			if bytes.Contains(b, []byte("4111111")) || !bytes.Contains(b, []byte("411111")) {
				t.Errorf("%v %v: the PAN the cut crosses shows more than its first six digits, or nothing", f, q)
			}
			if n := bytes.Count(b, []byte(cutMark)); n != 4 {
				t.Errorf("%v %v: %d values cut, want 4", f, q, n)
			}
			switch f {
			case Ascii:
				if bytes.Count(b, []byte("\n")) != 1 {
					t.Errorf("ascii: not one line")
				}
			case JSON:
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Errorf("json: %v", err)
				}
			case Protobuf:
				var m command.ProtobufAccessLog
				if err := protodelim.UnmarshalFrom(bytes.NewReader(b), &m); err != nil || !strings.HasSuffix(m.GetUserAgent(), cutMark) {
					t.Errorf("protobuf: %v, user agent %.20q", err, m.GetUserAgent())
				}
			}
		}
	}
	// A record within the bound is not cut.
	r := httpRecord()
	r.UserAgent = bytes.Repeat([]byte("u"), 16<<10)
	if b := (&Encoder{Format: JSON}).Append(nil, r); !bytes.Contains(b, r.UserAgent) {
		t.Errorf("a 16 KiB User-Agent was cut")
	}
}

// TestManyTagsAreCutNotLost: a frontend given tags whose encoding would
// pass the bound by itself (an operator can give hundreds) has its
// records written with the first tags, by key, within maxCutTags, and a
// tag "…" counting the others, rather than dropped whole.
func TestManyTagsAreCutNotLost(t *testing.T) {
	m := map[string]string{}
	for i := range 600 {
		m[fmt.Sprintf("k%03d", i)] = strings.Repeat("v", 200)
	}
	tags := NewTags(m)
	for _, f := range []Format{Ascii, JSON, Protobuf} {
		r := httpRecord()
		r.Tags = tags
		b := (&Encoder{Format: f, Tag: "WRK-00"}).Append(nil, r)
		if len(b) > MaxEncodedRecord {
			t.Errorf("%v: %d bytes, over %d", f, len(b), MaxEncodedRecord)
		}
		if !bytes.Contains(b, []byte("k000")) || bytes.Contains(b, []byte("k599")) || !bytes.Contains(b, []byte("more")) {
			t.Errorf("%v: want the first tags and a count of the others", f)
		}
	}
	c := tags.cut()
	kept := len(c.Map()) - 1
	if want := fmt.Sprintf("%d more", 600-kept); c.Map()[cutMark] != want || kept < 10 {
		t.Errorf("cut tags: %d kept, %q = %q, want %q", kept, cutMark, c.Map()[cutMark], want)
	}
	for _, enc := range [][]byte{c.ascii, c.json, c.proto} {
		if len(enc) > maxCutTags {
			t.Errorf("cut tags encode in %d bytes, over %d", len(enc), maxCutTags)
		}
	}
}
