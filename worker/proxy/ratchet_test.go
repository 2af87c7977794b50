package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/worker/accesslog"
)

// Ratchets: what a connection keeps, once idle, of the largest request it
// served. Each test below opens connections that each send one request,
// small or maximal, then stay idle, and compares the live heap each one
// holds then (runtime.MemStats after collections that empty the
// sync.Pools): a maximal request must leave no more behind than a small
// one, beyond a margin.

// ratchetConns is how many connections each measurement opens: enough for
// the noise of the heap's other users to be a few bytes per connection.
const ratchetConns = 200

// ratchetMargin bounds what a maximal request may leave on an idle
// connection beyond what a small one leaves, in bytes.
const ratchetMargin = 2 << 10

// heapPerConn opens n connections with open, each of which makes its
// request with do and stays idle, and returns the live heap each one
// holds then, in bytes, both ends of the loopback connections counted.
// The connections are closed when the test ends.
func heapPerConn[C any](t *testing.T, n int, open func() C, do func(C), closeFn func(C)) float64 {
	t.Helper()
	conns := make([]C, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			closeFn(c)
		}
	})
	// Two collections empty the sync.Pools, their victim caches too.
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		c := open()
		conns = append(conns, c)
		do(c)
	}
	waitFor(t, "the connections idle, their buffers given back", func() bool { return BuffersCheckedOut() == 0 })
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// anyHeadBackend answers every request head it reads (requests without a
// body) with resp; heads of any size.
func anyHeadBackend(t *testing.T, resp []byte) string {
	return newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := readHeadFrom(br); err != nil {
				return
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}).addr
}

// readKeepAliveResponse reads one response from br (a Content-Length body) and
// returns its status line.
func readKeepAliveResponse(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	head, err := readHeadFrom(br)
	if err != nil {
		t.Fatalf("reading a response head: %v (%q)", err, head)
	}
	n := 0
	for _, line := range strings.Split(head, "\r\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "content-length") {
			for _, c := range strings.TrimSpace(v) {
				n = n*10 + int(c-'0')
			}
		}
	}
	if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
		t.Fatal(err)
	}
	status, _, _ := strings.Cut(head, "\r\n")
	return status
}

// h1Client is a keep-alive HTTP/1.1 client connection.
type h1Client struct {
	c  net.Conn
	br *bufio.Reader
}

// h1Retained returns the live heap each idle keep-alive connection holds
// after the request req, written in pieces of at most piece bytes (each
// its own TLS record over TLS), on a listener (TLS when useTLS) with
// access logs and sticky sessions on.
func h1Retained(t *testing.T, useTLS bool, req []byte, piece int) float64 {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := anyHeadBackend(t, resp)
	// Access records on (the session copies what they show of each
	// request), none of them shipped: the shipper's buffers, the
	// worker's and bounded, are not the connections'.
	al := &accesslog.Logger{Gated: true}
	var conf *tls.Config
	if useTLS {
		conf = testTLSConfig(t, "bench.example.com")
	}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) {
		l.TLS = conf
		l.Clusters["c"].Sticky = true
	}, Options{Access: al})
	return heapPerConn(t, ratchetConns, func() *h1Client {
		c := dialIdle(t, f.addr, useTLS)
		return &h1Client{c: c, br: bufio.NewReaderSize(c, 512)}
	}, func(h *h1Client) {
		h.c.SetDeadline(time.Now().Add(10 * time.Second))
		for p := req; len(p) > 0; {
			n := min(piece, len(p))
			if _, err := h.c.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if st := readKeepAliveResponse(t, h.br); !strings.HasPrefix(st, "HTTP/1.1 200 ") {
			t.Fatalf("response %q", st)
		}
		h.br = nil // what the client kept of the response is not the proxy's
	}, func(h *h1Client) { h.c.Close() })
}

// smallH1Request is an ordinary request.
var smallH1Request = []byte("GET /index.html HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: curl/8.5\r\nCookie: SOZUBALANCEID=a; theme=dark\r\n\r\n")

// maximalH1Request is a request as large as a head may be (16 KiB): a
// long target, user agent and cookies, a sticky cookie among them, and
// many fields.
func maximalH1Request() []byte {
	var b bytes.Buffer
	b.WriteString("GET /" + strings.Repeat("p", 4000) + " HTTP/1.1\r\nHost: bench.example.com\r\n")
	b.WriteString("User-Agent: " + strings.Repeat("u", 3000) + "\r\n")
	b.WriteString("Cookie: SOZUBALANCEID=" + strings.Repeat("s", 2000) + "; a=" + strings.Repeat("c", 2000) + "\r\n")
	for i := 0; b.Len() < 15<<10 && i < 100; i++ {
		b.WriteString("X-F: " + strings.Repeat("f", 40) + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// TestRatchetHTTP1: an idle keep-alive connection keeps no more after a
// maximal request than after a small one, plain or over TLS. Over TLS,
// the request goes in records of 128 bytes, about the small one's size:
// crypto/tls keeps a buffer as large as the largest record read (about
// 7 KiB more per idle connection after records of 16 KiB, which "tls 16
// KiB records" logs), which is the standard library's, not the session's.
func TestRatchetHTTP1(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory blurs heap figures")
	}
	cases := []struct {
		name   string
		tls    bool
		piece  int
		strict bool
	}{
		{"plain", false, 1 << 20, true},
		{"tls", true, 128, true},
		{"tls 16 KiB records", true, 1 << 20, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			small := h1Retained(t, tc.tls, smallH1Request, tc.piece)
			big := h1Retained(t, tc.tls, maximalH1Request(), tc.piece)
			t.Logf("live heap per idle connection: %.0f B after a small request, %.0f B after a maximal one (+%.0f)", small, big, big-small)
			if tc.strict && big-small > ratchetMargin {
				t.Errorf("an idle connection keeps %.0f B more after a maximal request than after a small one, want at most %d", big-small, ratchetMargin)
			}
		})
	}
}

// h2Retained returns the live heap each idle HTTP/2 connection holds after
// it sent the requests frames makes (each on a stream of its own, in TLS
// records of 256 bytes: crypto/tls keeps a buffer as large as the largest
// record read, as TestRatchetHTTP1 says) and read their responses.
func h2Retained(t *testing.T, frames func(id uint32) []byte, streams int) float64 {
	return h2RetainedVia(t, h2IdleFixture(t, nil), frames, streams)
}

// h2RetainedVia is h2Retained on f's listener (HTTPS, h2 only, for
// a.test).
func h2RetainedVia(t *testing.T, f *fixture, frames func(id uint32) []byte, streams int) float64 {
	return heapPerConn(t, ratchetConns, func() *h2Conn {
		return dialH2Over(t, f, nil)
	}, func(h *h2Conn) {
		for i := range streams {
			id := uint32(1 + 2*i)
			for p := frames(id); len(p) > 0; {
				n := min(256, len(p))
				if _, err := h.c.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			h2Ended(t, h, id)
		}
		// The client's Framer keeps the largest frame it read: what it
		// kept is not the proxy's.
		h.fr = http2.NewFramer(h.c, h.c)
	}, func(h *h2Conn) { h.c.Close() })
}

// h2Ended reads frames until stream id ends (END_STREAM, or a reset of
// the stream); a GOAWAY fails t.
func h2Ended(t *testing.T, h *h2Conn, id uint32) {
	t.Helper()
	h.c.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for stream %d: %v", id, err)
		}
		switch fr := fr.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			t.Fatalf("waiting for stream %d: %v", id, fr)
		case *http2.RSTStreamFrame:
			if fr.StreamID == id {
				return
			}
		case *http2.HeadersFrame:
			if fr.StreamID == id && fr.StreamEnded() {
				return
			}
		case *http2.DataFrame:
			if fr.StreamID == id && fr.StreamEnded() {
				return
			}
		}
	}
}

// h2Block returns the frames of a request's header block of fields
// (after the pseudo-headers of a GET of / for a.test), encoded by a fresh
// encoder (whose table insertions a fresh decoder follows) and split
// into a HEADERS frame and CONTINUATIONs of at most frag bytes.
func h2Block(id uint32, frag int, fields []hpack.HeaderField) []byte {
	return h2BlockOf(id, frag, "/", fields)
}

// h2BlockOf is h2Block for a GET of path.
func h2BlockOf(id uint32, frag int, path string, fields []hpack.HeaderField) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range append([]hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "a.test"}, {Name: ":path", Value: path}}, fields...) {
		enc.WriteField(f)
	}
	block := hb.Bytes()
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	first := block[:min(frag, len(block))]
	block = block[len(first):]
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: true, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		p := block[:min(frag, len(block))]
		block = block[len(p):]
		fr.WriteContinuation(id, len(block) == 0, p)
	}
	return out.Bytes()
}

// TestRatchetHTTP2: an idle HTTP/2 connection keeps no more after maximal
// requests (a header block of 64 KiB in CONTINUATIONs, a field across
// them; 128 fields) than after a small one.
func TestRatchetHTTP2(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory blurs heap figures")
	}
	small := func(id uint32) []byte {
		return h2Block(id, 16384, []hpack.HeaderField{{Name: "user-agent", Value: "curl/8.5"}})
	}
	cases := []struct {
		name   string
		frames func(id uint32) []byte
	}{
		{"one field across continuations", func(id uint32) []byte {
			return h2Block(id, 16384, []hpack.HeaderField{{Name: "x-big", Value: strings.Repeat("v", 60<<10), Sensitive: true}})
		}},
		{"128 fields", func(id uint32) []byte {
			var fs []hpack.HeaderField
			for i := range 124 {
				fs = append(fs, hpack.HeaderField{Name: "x-f", Value: strings.Repeat(string(rune('a'+i%26)), 400), Sensitive: true})
			}
			return h2Block(id, 16384, fs)
		}},
		{"cookie crumbs", func(id uint32) []byte {
			var fs []hpack.HeaderField
			for range 120 {
				fs = append(fs, hpack.HeaderField{Name: "cookie", Value: "k=" + strings.Repeat("c", 100), Sensitive: true})
			}
			return h2Block(id, 16384, fs)
		}},
	}
	base := h2Retained(t, small, 1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			big := h2Retained(t, tc.frames, 1)
			t.Logf("live heap per idle connection: %.0f B after a small request, %.0f B after a maximal one (+%.0f)", base, big, big-base)
			if big-base > ratchetMargin {
				t.Errorf("an idle connection keeps %.0f B more after a maximal request than after a small one, want at most %d", big-base, ratchetMargin)
			}
		})
	}
}

// TestExchStateShrinks: an exchange state given back after a large head
// (a long X-Forwarded-For chain in its scratch, long Connection options)
// keeps none of those buffers in the pool; an ordinary one keeps them.
func TestExchStateShrinks(t *testing.T) {
	st := &exchState{scratch: make([]byte, 0, 64<<10)}
	st.reqHop.keep([][]byte{bytes.Repeat([]byte("a"), 8<<10)}, nil)
	st.respHop.keep([][]byte{bytes.Repeat([]byte("b"), 8<<10)}, nil)
	st.shrink()
	if c1, c2, c3 := cap(st.scratch), cap(st.reqHop.buf), cap(st.respHop.buf); c1 > exchKeep || c2 > exchKeep || c3 > exchKeep {
		t.Fatalf("kept %d, %d and %d bytes of buffers after a large head, want at most %d each", c1, c2, c3, exchKeep)
	}
	st = &exchState{scratch: make([]byte, 0, 512)}
	st.reqHop.keep([][]byte{[]byte("x-option")}, nil)
	st.shrink()
	if cap(st.scratch) != 512 || cap(st.reqHop.buf) == 0 {
		t.Fatalf("an ordinary state's buffers dropped: %d, %d", cap(st.scratch), cap(st.reqHop.buf))
	}
}

// TestRatchetHTTP2BodiesAndResponses: an idle HTTP/2 connection keeps no
// more after a request with large trailers (30 fields, 7.5 KiB, within
// what an HTTP/1.1 backend is given, after a body) than after a small
// request. After a response with 100 fields (11 KiB) from its backend it
// logs the figure only: the client's crypto/tls, in the same heap, keeps
// a record buffer as large as the head's record (about 6 KiB more); the
// server's side is held by h2's TestIdleConnectionDropsLargeResponseHead.
func TestRatchetHTTP2BodiesAndResponses(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory blurs heap figures")
	}
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/many" {
			for i := range 100 {
				w.Header().Set("X-Resp-"+strconv.Itoa(i), strings.Repeat("r", 100))
			}
		}
		io.WriteString(w, "hello world!\n")
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	get := func(path string) func(id uint32) []byte {
		return func(id uint32) []byte {
			return h2BlockOf(id, 16384, path, nil)
		}
	}
	trailers := func(id uint32) []byte {
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, fd := range []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
			{Name: ":authority", Value: "a.test"}, {Name: ":path", Value: "/"}, {Name: "trailer", Value: "x-t"}} {
			enc.WriteField(fd)
		}
		var out bytes.Buffer
		fr := http2.NewFramer(&out, nil)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true})
		fr.WriteData(id, false, []byte("body"))
		hb.Reset()
		for i := range 30 {
			enc.WriteField(hpack.HeaderField{Name: "x-t", Value: strings.Repeat(string(rune('a'+i%26)), 250), Sensitive: true})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
		return out.Bytes()
	}
	base := h2RetainedVia(t, f, get("/"), 1)
	for _, tc := range []struct {
		name   string
		frames func(id uint32) []byte
		strict bool
	}{
		{"request trailers", trailers, true},
		{"response fields", get("/many"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH2Over(t, f, nil)
			if _, err := h.c.Write(tc.frames(1)); err != nil {
				t.Fatal(err)
			}
			if st := h.status(t, 1); st != "200" {
				t.Fatalf("status %s, want 200", st)
			}
			h.c.Close()
			big := h2RetainedVia(t, f, tc.frames, 1)
			t.Logf("live heap per idle connection: %.0f B after a small request, %.0f B after %s (+%.0f)", base, big, tc.name, big-base)
			if tc.strict && big-base > ratchetMargin {
				t.Errorf("an idle connection keeps %.0f B more after %s than after a small request, want at most %d", big-base, tc.name, ratchetMargin)
			}
		})
	}
}
