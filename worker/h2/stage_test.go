package h2

import (
	"fmt"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// TestAddFieldStagesTheHead: fields staged with AddField go out first in
// the head, in HTTP/2 form (lower-cased; connection-specific and invalid
// ones refused), followed by those the response method is given; once the
// head is queued, AddField refuses. Every way a head leaves is covered:
// WriteResponse, WriteHeader, Write's implied 200, the handler's return.
func TestAddFieldStagesTheHead(t *testing.T) {
	type result struct{ kept, late []bool }
	results := make(chan result, 8)
	send := []func(s *Stream){
		func(s *Stream) {
			s.WriteResponse(201, []HeaderField{{Name: []byte("x-given"), Value: []byte("1")}}, []byte("body"))
		},
		func(s *Stream) {
			s.WriteHeader(201, []HeaderField{{Name: []byte("x-given"), Value: []byte("1")}})
			s.Close()
		},
		func(s *Stream) { s.Write([]byte("body")) },
		func(s *Stream) {},
	}
	h := HandlerFunc(func(s *Stream) {
		var r result
		for _, f := range [][2]string{{"Content-Type", "text/plain"}, {"Connection", "close"}, {"x-bad", "a\r\nb"},
			{"Bad Name", "v"}, {"X-Mixed-CASE", "Value Kept"}} {
			r.kept = append(r.kept, s.AddField([]byte(f[0]), []byte(f[1])))
		}
		send[(s.ID()-1)/2](s)
		r.late = append(r.late, s.AddField([]byte("x-late"), []byte("1")))
		results <- r
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	staged := []hpack.HeaderField{{Name: "content-type", Value: "text/plain"}, {Name: "x-mixed-case", Value: "Value Kept"}}
	given := hpack.HeaderField{Name: "x-given", Value: "1"}
	late := hpack.HeaderField{Name: "x-late", Value: "1"}
	for i, c := range []struct {
		status string
		given  bool
		late   bool // the handler that sends nothing: its "late" field is still staged when it returns
	}{{"201", true, false}, {"201", true, false}, {"200", false, false}, {"200", false, true}} {
		id := uint32(2*i + 1)
		rc.get(id, true)
		fields := decodeBlock(t, rc.responseBlock(id))
		want := append([]hpack.HeaderField{{Name: ":status", Value: c.status}}, staged...)
		if c.given {
			want = append(want, given)
		}
		if c.late {
			want = append(want, late)
		}
		if fmt.Sprint(fields) != fmt.Sprint(want) {
			t.Errorf("stream %d:\n got %v\nwant %v", id, fields, want)
		}
		r := <-results
		if fmt.Sprint(r.kept) != "[true false false false true]" || r.late[0] != c.late {
			t.Errorf("stream %d: AddField kept %v, after the head %v", id, r.kept, r.late)
		}
	}
}
