package statefile

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// FuzzDecode feeds arbitrary bytes to a Decoder. Invariants: no panic; the
// stream ends with io.EOF or a *RecordError; every record that decodes
// re-encodes to bytes that decode to an equal message and re-encode
// identically (the encoding is a fixpoint after one round).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{recCluster, recFrontend, recBackend, recListener, recActivate} {
		f.Add([]byte(s + Separator))
	}
	f.Add([]byte(""))
	f.Add([]byte(recListener + "\x00\x00"))
	f.Add([]byte(recListener + Separator + "\n"))
	f.Add([]byte(`{"id":"\u00e9\ud83d\ude00","content":{"request_type":{"SET_MAX_CONNECTIONS_PER_IP":18446744073709551615}}}` + "\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data))
		for {
			m, err := d.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var re *RecordError
				if !errors.As(err, &re) {
					t.Fatalf("untyped error %T %v", err, err)
				}
				return
			}
			b1, err := Marshal(m)
			if err != nil {
				if strings.Contains(err.Error(), "-byte limit") {
					continue // defaults written for omitted keys can grow a record past the limit
				}
				t.Fatalf("decoded record does not re-encode: %v\n%v", err, m)
			}
			var m2 command.WorkerRequest
			if err := Unmarshal(b1, &m2); err != nil {
				t.Fatalf("re-encoded record does not decode: %v\n%s", err, b1)
			}
			if !proto.Equal(m, &m2) {
				t.Fatalf("round trip changed the record:\n%v\n%v\n%s", m, &m2, b1)
			}
			b2, err := Marshal(&m2)
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("second encoding differs (%v):\n%s\n%s", err, b1, b2)
			}
		}
	})
}
