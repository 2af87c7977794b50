package h2c

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/worker/http1"
)

// scriptedBackend accepts one connection on a loopback socket, answers the
// handshake, waits for the HEADERS of stream 1 and then runs script,
// draining whatever the client sends.
func scriptedBackend(t *testing.T, script func(fr *http2.Framer, block func(kv ...string) []byte)) *Pool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var preface [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(c, preface[:]); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		fr.AllowIllegalWrites = true
		fr.WriteSettings()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 1 {
				break
			}
		}
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		script(fr, func(kv ...string) []byte {
			buf.Reset()
			for i := 0; i+1 < len(kv); i += 2 {
				enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
			}
			return append([]byte(nil), buf.Bytes()...)
		})
		io.Copy(io.Discard, c)
	}()
	return poolTo(ln, Options{})
}

// TestResponseConversion: HTTP/2 responses become exact HTTP/1.1 ones,
// and malformed ones (RFC 9113 §8.1.1) reset their stream with
// PROTOCOL_ERROR instead of reaching the client.
func TestResponseConversion(t *testing.T) {
	type fr = *http2.Framer
	type blk = func(kv ...string) []byte
	headers := func(f fr, b []byte, end bool) {
		f.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b, EndStream: end, EndHeaders: true})
	}
	tests := []struct {
		name   string
		script func(fr, blk)
		want   string // the HTTP/1.1 bytes; "" for a reset
	}{
		{"interim then final", func(f fr, b blk) {
			headers(f, b(":status", "100"), false)
			headers(f, b(":status", "200"), true)
		}, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"},
		{"content-length body", func(f fr, b blk) {
			headers(f, b(":status", "404", "content-length", "2", "x-a", "b"), false)
			f.WriteData(1, true, []byte("no"))
		}, "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nx-a: b\r\n\r\nno"},
		{"chunked with trailers", func(f fr, b blk) {
			headers(f, b(":status", "200"), false)
			f.WriteData(1, false, []byte("hi"))
			f.WriteDataPadded(1, false, []byte("!"), make([]byte, 7))
			headers(f, b("x-t", "1", "content-length", "9"), true) // content-length is no trailer: dropped
		}, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n1\r\n!\r\n0\r\nx-t: 1\r\n\r\n"},
		{"content-length body with announced trailers", func(f fr, b blk) {
			// HTTP/1.1 has trailers only after a chunked body: the
			// length is checked, not forwarded.
			headers(f, b(":status", "200", "content-length", "3", "trailer", "x-t"), false)
			f.WriteData(1, false, []byte("hi!"))
			headers(f, b("x-t", "1"), true)
		}, "HTTP/1.1 200 OK\r\ntrailer: x-t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhi!\r\n0\r\nx-t: 1\r\n\r\n"},
		{"announced trailers, content-length mismatch", func(f fr, b blk) {
			headers(f, b(":status", "200", "content-length", "5", "trailer", "x-t"), false)
			f.WriteData(1, false, []byte("hi!"))
			headers(f, b("x-t", "1"), true)
		}, ""},
		{"204 with a trailer field", func(f fr, b blk) {
			headers(f, b(":status", "204", "trailer", "x-t"), true)
		}, "HTTP/1.1 204 No Content\r\ntrailer: x-t\r\n\r\n"},
		{"204 without body", func(f fr, b blk) { headers(f, b(":status", "204"), true) }, "HTTP/1.1 204 No Content\r\n\r\n"},
		{"connection-specific field", func(f fr, b blk) { headers(f, b(":status", "200", "connection", "close"), true) }, ""},
		{"transfer-encoding", func(f fr, b blk) { headers(f, b(":status", "200", "transfer-encoding", "chunked"), true) }, ""},
		{"101", func(f fr, b blk) { headers(f, b(":status", "101"), true) }, ""},
		{"bad status", func(f fr, b blk) { headers(f, b(":status", "2000"), true) }, ""},
		{"no status", func(f fr, b blk) { headers(f, b("x", "y"), true) }, ""},
		{"request pseudo-header", func(f fr, b blk) { headers(f, b(":status", "200", ":path", "/"), true) }, ""},
		{"uppercase name", func(f fr, b blk) { headers(f, b(":status", "200", "X-Up", "1"), true) }, ""},
		{"content-length mismatch", func(f fr, b blk) {
			headers(f, b(":status", "200", "content-length", "5"), false)
			f.WriteData(1, true, []byte("abc"))
		}, ""},
		{"content-length with a sign", func(f fr, b blk) {
			headers(f, b(":status", "200", "content-length", "+3"), false)
			f.WriteData(1, true, []byte("abc"))
		}, ""},
		{"DATA beyond content-length", func(f fr, b blk) {
			headers(f, b(":status", "200", "content-length", "1"), false)
			f.WriteData(1, true, []byte("abc"))
		}, ""},
		{"DATA before the head", func(f fr, b blk) { f.WriteData(1, true, []byte("abc")) }, ""},
		{"DATA after 204", func(f fr, b blk) {
			headers(f, b(":status", "204"), false)
			f.WriteData(1, true, []byte("x"))
		}, ""},
		{"interim with END_STREAM", func(f fr, b blk) { headers(f, b(":status", "103"), true) }, ""},
		{"too many interim responses", func(f fr, b blk) {
			for range maxInterim + 1 {
				headers(f, b(":status", "103"), false)
			}
		}, ""},
		{"trailers without END_STREAM", func(f fr, b blk) {
			headers(f, b(":status", "200"), false)
			headers(f, b("x-t", "1"), false)
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := scriptedBackend(t, tc.script)
			defer p.Close()
			got, err := exchange(p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			if tc.want != "" {
				if err != nil || unchunk(t, got) != unchunk(t, tc.want) {
					t.Fatalf("got %q, %v\nwant %q", got, err, tc.want)
				}
				return
			}
			var re *ResetError
			if !errors.As(err, &re) || re.Remote || re.Code != http2.ErrCodeProtocol {
				t.Fatalf("got %q, %v; want a local PROTOCOL_ERROR reset", got, err)
			}
		})
	}
}

// TestNegativeWindowEnd: a stream whose send window went negative (the
// backend lowered SETTINGS_INITIAL_WINDOW_SIZE after DATA was sent) ends
// its request with an empty DATA frame without crediting any window back.
func TestNegativeWindowEnd(t *testing.T) {
	p := scriptedBackend(t, func(f *http2.Framer, _ func(kv ...string) []byte) {
		for { // the window shrinks once "hello" is sent
			fr, err := f.ReadFrame()
			if err != nil {
				return
			}
			if _, ok := fr.(*http2.DataFrame); ok {
				break
			}
		}
		f.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	})
	defer p.Close()
	st, _, err := p.Open(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write([]byte("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	in := st.cur.Load()
	c := in.c
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return in.sendWin < 0
	})
	if _, err := st.Write([]byte("0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sendWin != 65535-5 || in.sendWin != -5 {
		t.Fatalf("after the end of the body: connection window %d, stream window %d; want %d and -5", c.sendWin, in.sendWin, 65535-5)
	}
}

// TestRequestFieldsTE: an HTTP/1.1 head that accepts trailers (as the
// proxy writes it: "TE: trailers" with the "te" connection option) gives
// the HTTP/2 backend "te: trailers", which gRPC servers want (RFC 9113
// §8.2.2 allows no other TE); other TE values and what Connection names
// are dropped.
func TestRequestFieldsTE(t *testing.T) {
	for _, tt := range []struct {
		head string
		te   bool
	}{
		{"POST /g HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: te\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n", true},
		{"POST /g HTTP/1.1\r\nHost: a\r\nTE: gzip\r\nConnection: te\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n", false},
	} {
		var r http1.Request
		if err := http1.ParseRequest(&r, []byte(tt.head), nil); err != nil {
			t.Fatal(err)
		}
		fs, err := requestFields(&r)
		if err != nil {
			t.Fatal(err)
		}
		te, xa := 0, 0
		for _, f := range fs {
			switch f.name {
			case "te":
				te++
				if f.value != "trailers" {
					t.Errorf("te: %q", f.value)
				}
			case "x-a":
				xa++
			case "connection":
				t.Errorf("connection field forwarded")
			}
		}
		if (te == 1) != tt.te || te > 1 || xa != 1 {
			t.Errorf("%q: te fields %d (want trailers %v), x-a %d", tt.head, te, tt.te, xa)
		}
	}
}

// unchunk rewrites a chunked response in one canonical form, its chunks
// joined into one: how DATA frames are cut into chunks depends on when the
// reader drains them (frameChunkLocked).
func unchunk(t *testing.T, resp string) string {
	t.Helper()
	head, body, ok := strings.Cut(resp, "\r\n\r\n")
	if !ok || !strings.Contains(head, "transfer-encoding: chunked") {
		return resp
	}
	var data strings.Builder
	for {
		line, rest, ok := strings.Cut(body, "\r\n")
		if !ok {
			t.Fatalf("chunked body %q: no chunk line", body)
		}
		n, err := strconv.ParseUint(line, 16, 32)
		if err != nil {
			t.Fatalf("chunked body: chunk size %q: %v", line, err)
		}
		if n == 0 {
			return head + "\r\n\r\n" + data.String() + "\r\n0\r\n" + rest
		}
		if uint64(len(rest)) < n+2 || rest[n:n+2] != "\r\n" {
			t.Fatalf("chunked body %q: short chunk", body)
		}
		data.WriteString(rest[:n])
		body = rest[n+2:]
	}
}

// TestTrailersBeyondTheLimit: a trailer block that decodes to more than
// MaxHeaderListSize (small on the wire, large through HPACK's dynamic
// table) resets the stream, as a response head that large does: its
// fields are not forwarded cut to the limit, and the body gets no last
// chunk.
func TestTrailersBeyondTheLimit(t *testing.T) {
	p := scriptedBackend(t, func(f *http2.Framer, b func(kv ...string) []byte) {
		f.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b(":status", "200"), EndHeaders: true})
		f.WriteData(1, false, []byte("hi"))
		var kv []string
		for range 30 { // 30 × 3 KiB decoded, in about 3 KiB of block
			kv = append(kv, "x-big", strings.Repeat("a", 3000))
		}
		kv = append(kv, "grpc-status", "0")
		f.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b(kv...), EndHeaders: true, EndStream: true})
	})
	defer p.Close()
	got, err := exchange(p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	var re *ResetError
	if !errors.As(err, &re) || re.Code != http2.ErrCodeProtocol {
		t.Fatalf("err %v, got %q", err, got[:min(len(got), 200)])
	}
	if strings.Contains(got, "0\r\n") {
		t.Fatalf("a cut trailer block was forwarded: %q", got[:min(len(got), 200)])
	}
}
