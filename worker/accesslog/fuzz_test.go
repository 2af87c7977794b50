package accesslog

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/logmask"
)

// FuzzEncode: a record holding what a client chose (method, host,
// target, user agent, server name: any bytes, of any length) and what an
// operator chose (cluster and backend ids, a tag: UTF-8, as the command
// protocol and TOML require) encodes, in every format, within
// MaxEncodedRecord, and:
//   - ascii: one line, UTF-8, no control byte but its one tab, and the
//     same number of whitespace-separated fields whatever the values;
//   - JSON: one line, one valid JSON object, with no raw C1 or
//     bidirectional control;
//   - protobuf: one ProtobufAccessLog that decodes with the schema (every
//     string UTF-8), followed by its two zero bytes and nothing else, its
//     ids as given.
func FuzzEncode(f *testing.F) {
	r0 := httpRecord()
	f.Add([]byte(r0.Method), []byte(r0.Host), []byte(r0.Target), []byte(r0.UserAgent), "shop", "shop-0", "team", "pay", "sni.example", byte(0), uint16(0))
	f.Add([]byte("GET /x"), []byte("h\r\nX: 1"), []byte("/a 200\x1b[31m"), []byte("u]\xff\xc2\x9b"), "a b]", "-", "k=", "v, user-agent=x", "\xe2\x80\xae", byte(1), uint16(0))
	f.Add([]byte("M"), []byte("4111111111111111.example"), []byte("/p?card=4111111111111111"), []byte("\u00a0ua\u2028"), "", "", "", "", "", byte(2), uint16(300))
	f.Add([]byte{}, []byte{}, []byte{}, []byte{}, "c", "b", "a.b", "", "", byte(5), uint16(0))
	f.Fuzz(func(t *testing.T, method, host, target, ua []byte, cluster, backend, tagK, tagV, sni string, flags byte, rep uint16) {
		if !utf8.ValidString(cluster) || !utf8.ValidString(backend) || !utf8.ValidString(tagK) || !utf8.ValidString(tagV) {
			return // operator input: the command protocol and TOML carry UTF-8 only
		}
		if rep > 0 { // a long head (at most 256 KiB): the record must be cut, not lost
			target = append(target, '\x01')
			target = bytes.Repeat(target, min(int(rep), (256<<10)/len(target)+1))
		}
		r := httpRecord()
		r.Method, r.Host, r.Target, r.UserAgent = method, host, target, ua
		r.ClusterID, r.BackendID = cluster, backend
		r.Status = 0
		if flags&8 != 0 {
			r.Status = 502
		}
		r.Tags = nil
		if flags&16 != 0 {
			r.Tags = NewTags(map[string]string{tagK: tagV})
		}
		r.TLS = NewTLSInfo(&tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ServerName: sni})
		q := logmask.QueryMode(flags % 3)

		// ascii
		line := (&Encoder{Format: Ascii, Query: q, Tag: "WRK-00", PID: 1}).Append(nil, r)
		checkLen(t, "ascii", line)
		if !utf8.Valid(line) || bytes.IndexByte(line, '\n') != len(line)-1 || bytes.Count(line, []byte("\t")) != 1 {
			t.Fatalf("ascii: not one UTF-8 line with one tab: %q", line)
		}
		for _, c := range string(line[:len(line)-1]) {
			if (c < 0x20 && c != '\t') || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
				c == 0x2028 || c == 0x2029 || c == 0x200e || c == 0x200f || c == 0x061c {
				t.Fatalf("ascii: control %U in %q", c, line)
			}
		}
		// prompt 5, context 4, addresses, times and byte counts 5, the
		// tags list 1 (2 with both tags and a user agent), "None", the
		// protocol and the endpoint 4.
		want := 5 + 4 + 5 + 1 + 6
		if r.Tags != nil && len(ua) > 0 {
			want++
		}
		if got := len(strings.Fields(string(line))); got != want {
			t.Fatalf("ascii: %d fields, want %d: %q", got, want, line)
		}

		// JSON
		b := (&Encoder{Format: JSON, Query: q}).Append(nil, r)
		checkLen(t, "json", b)
		if bytes.IndexByte(b, '\n') != len(b)-1 {
			t.Fatalf("json: not one line: %q", b)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("json: %v: %q", err, b)
		}
		for _, c := range string(b) {
			if (c >= 0x80 && c <= 0x9f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f || c == 0x061c {
				t.Fatalf("json: raw %U in %q", c, b)
			}
		}

		// protobuf
		b = (&Encoder{Format: Protobuf, Query: q, Tag: "WRK-00"}).Append(nil, r)
		checkLen(t, "protobuf", b)
		br := bytes.NewReader(b)
		var pm command.ProtobufAccessLog
		if err := protodelim.UnmarshalFrom(br, &pm); err != nil {
			t.Fatalf("protobuf: %v: %q", err, b)
		}
		if br.Len() != 2 || !bytes.Equal(b[len(b)-2:], []byte{0, 0}) {
			t.Fatalf("protobuf: %d bytes after the record, want the two zero bytes", br.Len())
		}
		if pm.GetClusterId() != cluster || pm.GetBackendId() != backend {
			t.Fatalf("protobuf: ids %q %q, want %q %q", pm.GetClusterId(), pm.GetBackendId(), cluster, backend)
		}
	})
}

func checkLen(t *testing.T, format string, b []byte) {
	t.Helper()
	if len(b) > MaxEncodedRecord {
		t.Fatalf("%s: %d bytes, over MaxEncodedRecord (%d)", format, len(b), MaxEncodedRecord)
	}
}

// TestASCIITargetMaskedToNothing: a path-less target ("?a=1", an HTTP/2
// :path of a request refused as malformed) whose query is dropped
// (access_logs_query = "drop") shows "-", not an empty field that would
// shift the status into its place (found by FuzzEncode).
func TestASCIITargetMaskedToNothing(t *testing.T) {
	r := httpRecord()
	r.Target = []byte("?a=1")
	line := string((&Encoder{Format: Ascii, Query: logmask.QueryDrop}).Append(nil, r))
	if !strings.HasSuffix(line, " https shop.example.com GET - 200\n") {
		t.Errorf("ascii: %q", line)
	}
}
