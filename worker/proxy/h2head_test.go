package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// h2HeadResponses are the raw HTTP/1.1 answers of the backend of
// TestH2StreamHead, by request path.
var h2HeadResponses = map[string]string{
	"/len":     "HTTP/1.1 200 OK\r\nConnection: x-hop, keep-alive\r\nX-Hop: no\r\nKeep-Alive: timeout=5\r\nX-Keep: yes\r\nContent-Length: 5\r\n\r\nhello",
	"/big":     "HTTP/1.1 200 OK\r\nX-Keep: yes\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("b", 100000),
	"/chunked": "HTTP/1.1 200 OK\r\nX-Keep: yes\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
	"/empty":   "HTTP/1.1 200 OK\r\nX-Keep: yes\r\nContent-Length: 0\r\n\r\n",
	"/204":     "HTTP/1.1 204 No Content\r\nX-Keep: yes\r\n\r\n",
	"/early":   "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nX-Keep: yes\r\nContent-Length: 2\r\n\r\nok",
	"/close":   "HTTP/1.1 200 OK\r\nX-Keep: yes\r\nConnection: close\r\n\r\nuntil close",
}

// TestH2StreamHead checks the response heads a stream session hands to its
// stream as parsed (streamHead, setHead) against what the HTTP/1.1 head
// would have carried: end-to-end fields kept, hop-by-hop fields and
// connection options dropped, content-length as framed (HEAD and 204
// included), the request id added, small and large bodies, chunked bodies
// with trailers, close-delimited bodies, interim responses dropped.
func TestH2StreamHead(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			method, rest, _ := strings.Cut(head, " ")
			path, _, _ := strings.Cut(rest, " ")
			out := h2HeadResponses[path]
			if method == "HEAD" {
				out, _, _ = strings.Cut(out, "\r\n\r\n")
				out += "\r\n\r\n"
			}
			if _, err := io.WriteString(c, out); err != nil || path == "/close" {
				return
			}
		}
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2", "http/1.1"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	c := h2Client("a.test")
	for _, tt := range []struct {
		method, path string
		status       int
		body         string
		clen         string // the content-length field, "" for none
		trailer      string // X-Sum
	}{
		{"GET", "/len", 200, "hello", "5", ""},
		{"HEAD", "/len", 200, "", "5", ""},
		{"GET", "/big", 200, strings.Repeat("b", 100000), "100000", ""},
		{"GET", "/chunked", 200, "hello world", "", "42"},
		{"GET", "/empty", 200, "", "0", ""},
		{"GET", "/204", 204, "", "", ""},
		{"GET", "/early", 201, "ok", "2", ""},
		{"GET", "/close", 200, "until close", "", ""},
	} {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "https://"+f.addr+tt.path, nil)
			req.Host = "a.test"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s %s: body: %v", tt.method, tt.path, err)
			}
			if resp.ProtoMajor != 2 || resp.StatusCode != tt.status || string(got) != tt.body {
				t.Fatalf("%s %d: body %.40q, want %d %.40q", resp.Proto, resp.StatusCode, got, tt.status, tt.body)
			}
			h := resp.Header
			if h.Get("X-Keep") != "yes" || h.Get(DefaultIDHeader) == "" {
				t.Errorf("fields %v: X-Keep or %s missing", h, DefaultIDHeader)
			}
			for _, name := range []string{"X-Hop", "Keep-Alive", "Connection", "Transfer-Encoding", "Trailer"} {
				if _, ok := h[name]; ok {
					t.Errorf("fields %v: %s forwarded", h, name)
				}
			}
			if cl := h.Get("Content-Length"); cl != tt.clen {
				t.Errorf("content-length %q, want %q", cl, tt.clen)
			}
			if tt.clen != "" && tt.method == "GET" && resp.ContentLength != int64(len(tt.body)) {
				t.Errorf("ContentLength %d, want %s", resp.ContentLength, strconv.Itoa(len(tt.body)))
			}
			if resp.Trailer.Get("X-Sum") != tt.trailer {
				t.Errorf("trailer %v, want X-Sum %q", resp.Trailer, tt.trailer)
			}
		})
	}
}
