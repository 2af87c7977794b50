package http1_test

import (
	"fmt"

	"github.com/sozu-go/sozu/worker/http1"
)

// A proxy frames the head, parses it, forwards it in canonical form, then
// re-encodes the chunked body as it streams through.
func Example() {
	in := []byte("POST /api HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n" +
		"Connection: keep-alive\r\n\r\n4;sig=x\r\nWiki\r\n0\r\n\r\n")

	var s http1.HeadScanner
	n, err := s.Scan(in)
	if err != nil || n == 0 {
		fmt.Println("need more or refuse:", err)
		return
	}
	var req http1.Request
	if err := http1.ParseRequest(&req, in[:n], nil); err != nil {
		fmt.Println("refuse:", err)
		return
	}
	out := http1.AppendRequest(nil, &req, http1.Field{Name: []byte("X-Forwarded-For"), Value: []byte("192.0.2.1")})

	var body http1.ChunkedDecoder
	out, _, err = body.Reencode(out, in[n:])
	fmt.Printf("%q %v %v\n", out, err, body.Done())
	// Output:
	// "POST /api HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n4\r\nWiki\r\n0\r\n\r\n" <nil> true
}
