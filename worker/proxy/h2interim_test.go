package proxy

import (
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2ExpectContinue: an HTTP/2 request with "expect: 100-continue"
// gets the backend's 100 as a HEADERS frame of its own (RFC 9113 §8.1),
// as an HTTP/1.1 client gets it, so that a client holding its body until
// then sends it; then the final response. The client here sends no byte
// of its body before the 100: without one the test ends on its deadline.
func TestH2ExpectContinue(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</s.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		body, _ := io.ReadAll(r.Body) // Go's server sends 100 Continue here
		w.Write(append([]byte("got "), body...))
	})
	f := h2OnlyFixture(t, b.addr)
	h := dialH2(t, f)
	block := h.block("/up", ":method", "POST", "content-length", "5", "expect", "100-continue")
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, nil)
	var statuses []string
	var body []byte
	for done := false; !done; {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after heads %v: %v", statuses, err)
		}
		switch fr := fr.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(fr.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			status := ""
			for _, hf := range fields {
				if hf.Name == ":status" {
					status = hf.Value
				}
			}
			statuses = append(statuses, status)
			if status[0] == '1' && fr.StreamEnded() {
				t.Fatalf("interim head %s ends the stream", status)
			}
			if status == "100" {
				if err := h.fr.WriteData(1, true, []byte("hello")); err != nil {
					t.Fatal(err)
				}
			}
			done = fr.StreamEnded()
		case *http2.DataFrame:
			body = append(body, fr.Data()...)
			done = fr.StreamEnded()
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("after heads %v: %v", statuses, fr)
		}
	}
	if got := string(body); len(statuses) != 3 || statuses[0] != "103" || statuses[1] != "100" || statuses[2] != "200" || got != "got hello" {
		t.Fatalf("heads %v, body %q; want [103 100 200], %q", statuses, got, "got hello")
	}
}

// TestH2Connect: CONNECT (RFC 9113 §8.5) is answered 501 over HTTP/2 as
// over HTTP/1.1 (refuse), its stream left open for tunnel data or not.
func TestH2Connect(t *testing.T) {
	f := h2OnlyFixture(t, newSlowBackend(t).addr)
	h := dialH2(t, f)
	for _, tc := range []struct {
		id   uint32
		open bool
	}{{1, true}, {3, false}} { // in order: stream ids only grow
		id, open := tc.id, tc.open
		h.hb.Reset()
		h.enc.WriteField(hpack.HeaderField{Name: ":method", Value: "CONNECT"})
		h.enc.WriteField(hpack.HeaderField{Name: ":authority", Value: "a.test:443"})
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hb.Bytes(), EndHeaders: true, EndStream: !open}); err != nil {
			t.Fatal(err)
		}
		if got := h.status(t, id); got != "501" {
			t.Fatalf("CONNECT (stream open %v): status %s, want 501", open, got)
		}
	}
}

// status reads frames up to the response head of stream id and returns
// its :status; a reset of the stream or the connection fails t.
func (h *h2Conn) status(t *testing.T, id uint32) string {
	t.Helper()
	dec := hpack.NewDecoder(4096, nil)
	for {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch fr := fr.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			if fr.Header().StreamID == id || fr.Header().Type == http2.FrameGoAway {
				t.Fatalf("stream %d: %v", id, fr)
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(fr.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			if fr.StreamID != id {
				continue
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					return hf.Value
				}
			}
		}
	}
}

// TestInterimResponsesBounded: a backend sending interim responses
// without end gets the client a 502 after a few, not one forwarded each
// until the back timeout.
func TestInterimResponsesBounded(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		for i := 0; i < 100; i++ {
			if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"); err != nil {
				return
			}
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	f := h2OnlyFixture(t, b.addr)
	h := dialH2(t, f)
	h.get(1, "/x")
	for {
		if got := h.status(t, 1); got != "103" {
			if got != "502" {
				t.Fatalf("final status %s, want 502", got)
			}
			return
		}
	}
}
