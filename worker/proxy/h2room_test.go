package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// heldBackend answers the first request on each connection with head,
// then first (the first body bytes, in a write of their own), then holds
// the rest of its response until release is closed, then writes rest.
func heldBackend(t *testing.T, head, first, rest string) (addr string, release chan struct{}) {
	release = make(chan struct{})
	b := newRawBackend(t, func(c net.Conn) {
		if _, err := readHeadFrom(bufio.NewReader(c)); err != nil {
			return
		}
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		if first != "" {
			if _, err := io.WriteString(c, first); err != nil {
				return
			}
		}
		<-release
		io.WriteString(c, rest)
	})
	// After newRawBackend's: cleanups run last first, so the handler is
	// let go before the backend waits for it.
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return b.addr, release
}

// h2Frames reads the frames of stream id from fr and reports each HEADERS
// (its :status) and DATA (its bytes) on the channels, until END_STREAM, a
// reset or a connection error (on errc). SETTINGS are acknowledged.
func h2Frames(fr *http2.Framer, id uint32, status chan<- string, data chan<- []byte, errc chan<- error) {
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			errc <- err
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				errc <- err
				return
			}
			for _, hf := range fields {
				if hf.Name == ":status" && f.StreamID == id {
					status <- hf.Value
				}
			}
			if f.StreamEnded() && f.StreamID == id {
				errc <- io.EOF
				return
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				data <- bytes.Clone(f.Data())
				if f.StreamEnded() {
					errc <- io.EOF
					return
				}
			}
		case *http2.RSTStreamFrame:
			errc <- fmt.Errorf("stream %d reset: %v", f.StreamID, f.ErrCode)
			return
		case *http2.GoAwayFrame:
			errc <- fmt.Errorf("GOAWAY %v", f.ErrCode)
			return
		}
	}
}

// TestH2ZeroWindowSendsTheHead: HEADERS are not flow-controlled (RFC 9113
// §6.9): a client whose stream window is 0 gets the response head at once,
// and the body once it grants window. A stream session that waits for
// window must not hold the head back with the body, nor wait for the
// backend's body to send it: a client may grant window only on seeing the
// head.
func TestH2ZeroWindowSendsTheHead(t *testing.T) {
	for _, tc := range []struct {
		name, head, first, rest, body string
	}{
		{"length, head alone", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "", "hello", "hello"},
		{"length, head and first bytes", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "hello", "world", "helloworld"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhello\r\n", "5\r\nworld\r\n0\r\n\r\n", "helloworld"},
		{"close-delimited", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", "hello", "world", "helloworld"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, release := heldBackend(t, tc.head, tc.first, tc.rest)
			f := h2OnlyFixture(t, b)
			fr := dialH2Raw(t, f.addr, "a.test", 15*time.Second, 0)
			writeH2Get(fr, 1, "a.test", "/")
			status, data, errc := make(chan string, 4), make(chan []byte, 64), make(chan error, 1)
			go h2Frames(fr, 1, status, data, errc)
			select {
			case s := <-status:
				if s != "200" {
					t.Fatalf(":status %s", s)
				}
			case d := <-data:
				t.Fatalf("DATA %q in a window of 0", d)
			case err := <-errc:
				t.Fatalf("before the head: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("no response head 5 s after the request, the stream's window being 0")
			}
			close(release)
			fr.WriteWindowUpdate(1, 1<<20)
			var got []byte
			for {
				select {
				case d := <-data:
					got = append(got, d...)
					continue
				case err := <-errc:
					for len(data) > 0 {
						got = append(got, <-data...)
					}
					if err != io.EOF {
						t.Fatalf("after %q: %v", got, err)
					}
				}
				break
			}
			if string(got) != tc.body {
				t.Fatalf("body %q, want %q", got, tc.body)
			}
		})
	}
}

// TestStreamedBodyNotWithheld: body bytes that reach the proxy go on to
// the client while the backend holds the rest (server-sent events, long
// polling), over HTTP/1.1 and HTTP/2, whatever the response's framing; as
// does the head, before any body.
func TestStreamedBodyNotWithheld(t *testing.T) {
	for _, tc := range []struct {
		name, head, first, rest string
		want                    string // of the HTTP/1.1 response, after the head
	}{
		{"length, head alone", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "", "hello", ""},
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "hello", "world", "hello"},
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n", "7\r\ndata: 1\r\n", "0\r\n\r\n", "7\r\ndata: 1\r\n"},
		{"close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n", "data: 1", "", "7\r\ndata: 1\r\n"},
	} {
		t.Run(tc.name+"/HTTP/1.1", func(t *testing.T) {
			b, _ := heldBackend(t, tc.head, tc.first, tc.rest)
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {b}}, nil)
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
			r := bufio.NewReader(c)
			head, err := readHeadFrom(r)
			if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
				t.Fatalf("head %q: %v", head, err)
			}
			got := make([]byte, len(tc.want))
			if _, err := io.ReadFull(r, got); err != nil || string(got) != tc.want {
				t.Fatalf("body so far %q (want %q): %v", got, tc.want, err)
			}
		})
		t.Run(tc.name+"/HTTP/2", func(t *testing.T) {
			b, _ := heldBackend(t, tc.head, tc.first, tc.rest)
			h := dialH2(t, h2OnlyFixture(t, b))
			h.get(1, "/")
			status, data, errc := make(chan string, 4), make(chan []byte, 64), make(chan error, 1)
			go h2Frames(h.fr, 1, status, data, errc)
			want := tc.first
			if strings.HasPrefix(tc.want, "7\r\n") {
				want = "data: 1"
			}
			deadline := time.After(5 * time.Second)
			select {
			case <-status:
			case err := <-errc:
				t.Fatal(err)
			case <-deadline:
				t.Fatal("no response head 5 s after the request")
			}
			var got []byte
			for len(got) < len(want) {
				select {
				case d := <-data:
					got = append(got, d...)
				case err := <-errc:
					t.Fatal(err)
				case <-deadline:
					t.Fatalf("body so far %q, want %q", got, want)
				}
			}
			if string(got) != want {
				t.Fatalf("body so far %q, want %q", got, want)
			}
		})
	}
}
