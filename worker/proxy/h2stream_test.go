package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/http1"
)

// streamConnRig serves HTTP/2 on a loopback connection whose handler
// writes a stream's scripted HTTP/1.1 response, in the scripted pieces,
// into a streamConn, then closes it; a raw client reads what the stream
// became. One stream at a time.
type streamConnRig struct {
	tb     testing.TB
	ln     net.Listener
	mu     sync.Mutex
	script map[uint32][][]byte
	nc     net.Conn
	fr     *http2.Framer
	enc    *hpack.Encoder
	hb     bytes.Buffer
	next   uint32
	dec    *hpack.Decoder
}

func newStreamConnRig(tb testing.TB) *streamConnRig {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &streamConnRig{tb: tb, ln: ln, script: map[uint32][][]byte{}}
	tb.Cleanup(func() {
		ln.Close()
		if r.nc != nil {
			r.nc.Close()
		}
	})
	// Every reset we emit counts against a budget: lift it.
	lim := h2.Limits{MaxRstStreamEmittedLifetime: 1 << 40, MaxGlitchCount: 1 << 30}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h2.NewConn(c, lim, h2.HandlerFunc(r.serve), nil).Serve()
		}
	}()
	return r
}

func (r *streamConnRig) serve(st *h2.Stream) {
	r.mu.Lock()
	pieces := r.script[st.ID()]
	delete(r.script, st.ID())
	r.mu.Unlock()
	a := newPeerAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	sc := getStreamConn(st, a, a, st.HasBody() && st.ContentLength() < 0)
	defer putStreamConn(sc)
	for _, p := range pieces {
		if string(p) == forwardedMark {
			sc.forwarded.Store(true)
			continue
		}
		if _, err := sc.Write(p); err != nil {
			break
		}
	}
	sc.Close()
}

// forwardedMark, as a scripted piece, marks the request as forwarded to a
// backend instead of being written.
const forwardedMark = "\x00forwarded"

// dial (re)connects the client.
func (r *streamConnRig) dial() {
	if r.nc != nil {
		r.nc.Close()
	}
	nc, err := net.Dial("tcp", r.ln.Addr().String())
	if err != nil {
		r.tb.Fatal(err)
	}
	r.nc, r.next = nc, 1
	r.fr = http2.NewFramer(nc, nc)
	r.fr.SetMaxReadFrameSize(1 << 24)
	r.enc = hpack.NewEncoder(&r.hb)
	r.dec = hpack.NewDecoder(4096, nil)
	io.WriteString(nc, http2.ClientPreface)
	r.fr.WriteSettings()
	r.fr.WriteWindowUpdate(0, 1<<30)
}

// outcome is what a stream became, in comparable form.
type outcome struct {
	rst      string // the RST_STREAM code, "" for none
	interim  string // the interim heads: status and fields each, "; " between heads
	status   string
	fields   string // regular fields, sorted
	body     string
	trailers string
}

// run sends a GET on a new stream whose response is written in pieces.
func (r *streamConnRig) run(pieces ...[]byte) outcome {
	r.tb.Helper()
	if r.nc == nil || r.next > 1<<30 {
		r.dial()
	}
	id := r.next
	r.next += 2
	r.mu.Lock()
	r.script[id] = pieces
	r.mu.Unlock()
	r.hb.Reset()
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/"}} {
		r.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	r.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		r.tb.Fatal(err)
	}
	var o outcome
	var body bytes.Buffer
	headers := 0
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.tb.Fatalf("stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				r.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			r.tb.Fatalf("stream %d: GOAWAY %v", id, f.ErrCode)
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				o.rst = f.ErrCode.String()
				return o
			}
		case *http2.HeadersFrame:
			if f.StreamID != id {
				continue
			}
			hf, err := r.dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				r.tb.Fatal(err)
			}
			var list []string
			status := ""
			for _, h := range hf {
				if h.Name == ":status" {
					status = h.Value
					continue
				}
				list = append(list, h.Name+": "+h.Value)
			}
			sort.Strings(list)
			if headers == 0 && strings.HasPrefix(status, "1") {
				if f.StreamEnded() {
					r.tb.Fatalf("stream %d: interim head %s ends the stream", id, status)
				}
				if o.interim != "" {
					o.interim += "; "
				}
				o.interim += strings.Join(append([]string{status}, list...), " ")
				continue
			}
			if headers++; headers == 1 {
				o.status = status
				o.fields = strings.Join(list, "\n")
			} else {
				o.trailers = strings.Join(list, "\n")
			}
			if f.StreamEnded() {
				o.body = body.String()
				return o
			}
		case *http2.DataFrame:
			if f.StreamID != id {
				continue
			}
			body.Write(f.Data())
			if f.StreamEnded() {
				o.body = body.String()
				return o
			}
		}
	}
}

// TestStreamConnResponses checks how a streamConn turns the HTTP/1.1
// response a session writes into an HTTP/2 response, the response written
// whole and cut at every byte.
func TestStreamConnResponses(t *testing.T) {
	r := newStreamConnRig(t)
	for _, tt := range []struct {
		name string
		resp string
		want outcome
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
			outcome{status: "200", fields: "content-length: 5\ncontent-type: text/plain", body: "hello"}},
		{"no body", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", outcome{status: "204", fields: "x-a: 1"}},
		{"chunked with trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Sum: 9\r\n\r\n",
			outcome{status: "200", body: "abcde", trailers: "x-sum: 9"}},
		{"interim responses", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			outcome{interim: "100; 103 link: </s.css>; rel=preload", status: "200", fields: "content-length: 2", body: "ok"}},
		{"connection options dropped", "HTTP/1.1 200 OK\r\nConnection: x-hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
			outcome{status: "200", fields: "content-length: 0"}},
		// An answer template may keep these (the proxy's own 503 with an
		// operator's "TE: gzip"): clients refuse them over HTTP/2.
		{"hop-by-hop fields dropped", "HTTP/1.1 503 Service Unavailable\r\nTE: gzip\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nClose: now\r\nX-A: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
			outcome{status: "503", fields: "content-length: 2\nx-a: 1", body: "no"}},
		// More fields than a backend's head may have, with those the
		// proxy added (response edits): taken whole, as over HTTP/1.1.
		// (TestHTTP2Parity checks a head over DefaultMaxHeadBytes.)
		{"more fields than a backend may send", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + strings.Repeat("X-F: v\r\n", 2*http1.DefaultMaxFields) + "\r\n",
			outcome{status: "200", fields: "content-length: 0\n" + strings.TrimSuffix(strings.Repeat("x-f: v\n", 2*http1.DefaultMaxFields), "\n")}},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nstreamed until close", outcome{status: "200", body: "streamed until close"}},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", outcome{rst: "INTERNAL_ERROR"}},
		{"chunked cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", outcome{rst: "INTERNAL_ERROR"}},
		{"malformed head", "HTTP/1.1 200 OK\r\nBad Field\r\n\r\n", outcome{rst: "INTERNAL_ERROR"}},
		{"nothing written", "", outcome{rst: "REFUSED_STREAM"}},
		{"head cut short", "HTTP/1.1 200 OK\r\nContent-Le", outcome{rst: "REFUSED_STREAM"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := r.run([]byte(tt.resp))
			// A reset stream may have sent its head first: only the
			// code is compared then.
			if tt.want.rst != "" {
				got = outcome{rst: got.rst}
			}
			if got != tt.want {
				t.Fatalf("whole: got %+v, want %+v", got, tt.want)
			}
			for cut := 1; cut < len(tt.resp); cut++ {
				split := r.run([]byte(tt.resp[:cut]), []byte(tt.resp[cut:]))
				if tt.want.rst != "" {
					split = outcome{rst: split.rst}
				}
				if split != tt.want {
					t.Fatalf("cut at %d: got %+v, want %+v", cut, split, tt.want)
				}
			}
		})
	}
}

// TestStreamConnForwardedUnanswered: a stream whose session ends without
// a response is reset REFUSED_STREAM (the client may retry it, RFC 9113
// §8.7) only when its request reached no backend; else INTERNAL_ERROR: a
// client retrying a request the backend may have processed (a payment)
// would send it twice.
func TestStreamConnForwardedUnanswered(t *testing.T) {
	r := newStreamConnRig(t)
	if got := r.run(); got.rst != "REFUSED_STREAM" {
		t.Fatalf("not forwarded: %+v, want REFUSED_STREAM", got)
	}
	if got := r.run([]byte(forwardedMark)); got.rst != "INTERNAL_ERROR" {
		t.Fatalf("forwarded: %+v, want INTERNAL_ERROR", got)
	}
}

// FuzzStreamConnSplit checks that a streamConn's incremental framing does
// not depend on how the response is cut into writes: any bytes, written
// whole or in two pieces, give the same HTTP/2 stream (or the same reset).
func FuzzStreamConnSplit(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), uint16(20))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), uint16(50))
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\nbye"), uint16(30))
	f.Add([]byte("HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nraw"), uint16(3))
	f.Fuzz(func(t *testing.T, resp []byte, cut uint16) {
		r := newStreamConnRig(t)
		whole := r.run(resp)
		c := 0
		if len(resp) > 0 {
			c = int(cut) % len(resp)
		}
		split := r.run(resp[:c], resp[c:])
		if whole.rst != "" || split.rst != "" {
			whole, split = outcome{rst: whole.rst}, outcome{rst: split.rst}
		}
		if whole != split {
			t.Fatalf("cut at %d of %q:\nwhole %+v\nsplit %+v", c, resp, whole, split)
		}
	})
}

// TestH2HeadTooLarge: a request HTTP/2 accepts whose HTTP/1.1 head would
// exceed what an HTTP/1.1 client may send is answered 431 by its stream's
// session, like an HTTP/1.1 one (the proxy's answer, with the request id),
// and never forwarded; the connection serves the next request. A request
// line over its limit is answered 414 the same way, however long.
func TestH2HeadTooLarge(t *testing.T) {
	f, b := h2Fixture(t, anyHost("c"), nil)
	c := h2Client("a.test")
	do := func(big int) *http.Response {
		r, _ := http.NewRequest("GET", "https://"+f.addr+"/", nil)
		r.Host = "a.test"
		if big > 0 {
			r.Header.Set("X-Big", strings.Repeat("v", big))
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do(20 << 10)
	if resp.ProtoMajor != 2 || resp.StatusCode != 431 {
		t.Fatalf("%s %d, want HTTP/2.0 431", resp.Proto, resp.StatusCode)
	}
	if resp.Header.Get(DefaultIDHeader) == "" {
		t.Fatalf("no %s on the answer: %v", DefaultIDHeader, resp.Header)
	}
	if n := b.conns.Load(); n != 0 {
		t.Fatalf("%d connections made to the backend", n)
	}
	if resp := do(0); resp.StatusCode != 200 {
		t.Fatalf("next request: %d", resp.StatusCode)
	}
	// A request line over the limit (the stream's head is parsed without a
	// scan: ParseRequest keeps the limit).
	r, _ := http.NewRequest("GET", "https://"+f.addr+"/"+strings.Repeat("p", 9<<10), nil)
	r.Host = "a.test"
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 414 {
		t.Fatalf("a 9 KiB target: %d, want 414", resp.StatusCode)
	}
	// One longer than a whole head: 414 still, as over HTTP/1.1 (the
	// bridge refuses that head before any parse).
	r, _ = http.NewRequest("GET", "https://"+f.addr+"/"+strings.Repeat("p", 17<<10), nil)
	r.Host = "a.test"
	if resp, err = c.Do(r); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 414 {
		t.Fatalf("a 17 KiB target: %d, want 414", resp.StatusCode)
	}
	if n := b.conns.Load(); n != 1 {
		t.Fatalf("%d connections made to the backend, want 1 (the 200)", n)
	}
}
