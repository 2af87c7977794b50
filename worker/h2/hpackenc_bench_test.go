package h2

import (
	"net"
	"testing"
)

// nginxResponse is the head of nginx's answer to a GET of a small static
// file, as a stream queues it (names lower-cased).
var nginxResponse = [][2]string{
	{"server", "nginx/1.22.1"}, {"date", "Sun, 06 Dec 2026 19:00:00 GMT"},
	{"content-type", "text/html"}, {"content-length", "13"},
	{"last-modified", "Sun, 06 Dec 2026 18:00:00 GMT"}, {"etag", `"6751d0a0-d"`},
	{"accept-ranges", "bytes"}, {"x-request-id", "01M96APJ43BRRCXTD41E99BVNY"},
}

// BenchmarkWriteHeaderBlock measures the encoding and framing of one
// response head (writeHeaderBlock), the per-response work of the writer.
func BenchmarkWriteHeaderBlock(b *testing.B) {
	a, z := net.Pipe()
	defer a.Close()
	defer z.Close()
	c := NewConn(a, Limits{}, blockHandler, nil)
	var arena []byte
	var refs []fieldRef
	for _, f := range nginxResponse {
		arena, refs, _ = appendResponseField(arena, refs, []byte(f[0]), []byte(f[1]))
	}
	date := refs[1]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// The date changes every second, the request id every response.
		i++
		arena[date.off+date.nlen+23] = byte('0' + i%10)
		c.wbuf.b = c.wbuf.b[:0]
		c.writeHeaderBlock(1, 200, arena, refs, false)
	}
}
