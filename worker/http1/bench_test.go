package http1

import "testing"

// browserRequest is what a desktop browser sends for a page: 12 fields,
// about 500 bytes.
var browserRequest = "GET /products/shoes/running?color=blue&size=42 HTTP/1.1\r\n" +
	"Host: shop.example.com\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: max-age=0\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Referer: https://shop.example.com/products/shoes\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n" +
	"Cookie: session=3f2a9c1e7b5d4a6f8e0c; theme=dark\r\n" +
	"\r\n"

// typicalResponse is an application server's answer to browserRequest.
var typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 27 May 2024 10:00:00 GMT\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Length: 48213\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: private, max-age=0\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"Set-Cookie: session=3f2a9c1e7b5d4a6f8e0c; Path=/; HttpOnly; Secure; SameSite=Lax\r\n" +
	"Strict-Transport-Security: max-age=63072000\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"\r\n"

func BenchmarkParseRequest(b *testing.B) {
	in := []byte(browserRequest)
	var r Request
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseRequest(&r, in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindRequestHead(b *testing.B) {
	in := []byte(browserRequest)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := FindRequestHead(in, nil); n != len(in) || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte(typicalResponse)
	var r Response
	method := []byte("GET")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseResponse(&r, in, method, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequest(b *testing.B) {
	var r Request
	if err := ParseRequest(&r, []byte(browserRequest), nil); err != nil {
		b.Fatal(err)
	}
	xff := Field{Name: []byte("X-Forwarded-For"), Value: []byte("192.0.2.1")}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendRequest(dst[:0], &r, xff)
	}
}

func BenchmarkChunkedReencode(b *testing.B) {
	var body []byte
	for range 16 {
		body = AppendChunk(body, make([]byte, 4096))
	}
	body = AppendLastChunk(body, nil)
	var d ChunkedDecoder
	dst := make([]byte, 0, len(body)+DefaultMaxTrailerBytes)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset()
		var err error
		if dst, _, err = d.Reencode(dst[:0], body); err != nil || !d.Done() {
			b.Fatal(err)
		}
	}
}
