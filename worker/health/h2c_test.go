package health

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2cOrigin is an h2c-only backend (prior knowledge; an HTTP/1.1 request
// is a protocol error to it) answering every request with status and
// sending each request it served to seen.
func h2cOrigin(t *testing.T, status int) (addr string, seen chan *http.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen = make(chan *http.Request, 16)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.WriteHeader(status)
	})
	srv := &http2.Server{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(c, &http2.ServeConnOpts{Handler: h})
		}
	}()
	return ln.Addr().String(), seen
}

// TestProbeH2C: a cluster with http2 = true is probed in HTTP/2 with prior
// knowledge, as its requests go: an h2c-only backend answering 2xx passes
// (it would fail an HTTP/1.1 probe), its status is checked as in
// HTTP/1.1, and the probe carries only what the configuration says.
func TestProbeH2C(t *testing.T) {
	var d net.Dialer
	ok, seen := h2cOrigin(t, 204)
	cfg := Config{URI: "/health?x=1", Timeout: 2 * time.Second, H2C: true}
	if err := Probe(context.Background(), d.DialContext, cfg, ok); err != nil {
		t.Fatalf("h2c probe of an h2c backend answering 204: %v", err)
	}
	r := <-seen
	if r.ProtoMajor != 2 || r.Method != "GET" || r.URL.RequestURI() != "/health?x=1" || r.Host != ok ||
		r.UserAgent() != userAgent || len(r.Header) != 2 {
		t.Errorf("probe request: HTTP/%d %s %s host %s header %v", r.ProtoMajor, r.Method, r.URL.RequestURI(), r.Host, r.Header)
	}
	exact := cfg
	exact.Expected = 200
	if err := Probe(context.Background(), d.DialContext, exact, ok); err == nil || !strings.Contains(err.Error(), "got 204, want 200") {
		t.Errorf("204 with 200 expected: %v", err)
	}
	h1 := cfg
	h1.H2C = false
	if err := Probe(context.Background(), d.DialContext, h1, ok); err == nil {
		t.Error("an HTTP/1.1 probe of an h2c-only backend passed: the test backend is not h2c-only")
	}
	busy, _ := h2cOrigin(t, 503)
	if err := Probe(context.Background(), d.DialContext, cfg, busy); err == nil || !strings.Contains(err.Error(), "status: got 503, want any 2xx") {
		t.Errorf("h2c backend answering 503: %v", err)
	}
	// An HTTP/1.1-only backend answers the preface with an HTTP/1.1
	// error, not frames: the probe fails, it does not hang.
	h1only, _ := origin(t, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
	if err := Probe(context.Background(), d.DialContext, cfg, h1only); err == nil || !strings.Contains(err.Error(), "read") {
		t.Errorf("h2c probe of an HTTP/1.1 backend: %v, want a read error", err)
	}
}

// head writes a response head with :status on stream 1.
func head(fr *http2.Framer, status string) {
	var hb bytes.Buffer
	hpack.NewEncoder(&hb).WriteField(hpack.HeaderField{Name: ":status", Value: status})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
}

// TestProbeH2CGoAway: a backend that refuses the connection with GOAWAY,
// resets the probe's stream, sends a frame larger than the probe allows,
// or a 101, fails the probe at once; a graceful GOAWAY that covers stream
// 1 (RFC 9113 §6.8) and an interim 103 do not.
func TestProbeH2CGoAway(t *testing.T) {
	var d net.Dialer
	for _, c := range []struct {
		name  string
		reply func(*http2.Framer)
		want  string // "": the probe passes
	}{
		{"goaway", func(fr *http2.Framer) { fr.WriteGoAway(0, http2.ErrCodeEnhanceYourCalm, nil) }, "GOAWAY ENHANCE_YOUR_CALM"},
		{"graceful goaway before stream 1", func(fr *http2.Framer) { fr.WriteGoAway(0, http2.ErrCodeNo, nil) }, "GOAWAY NO_ERROR (last stream 0)"},
		{"graceful goaway covering stream 1", func(fr *http2.Framer) {
			fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			head(fr, "200")
		}, ""},
		{"103 then 204", func(fr *http2.Framer) { head(fr, "103"); head(fr, "204") }, ""},
		{"101", func(fr *http2.Framer) { head(fr, "101") }, "§8.6"},
		{"frame over 16 KiB", func(fr *http2.Framer) {
			fr.WriteRawFrame(http2.FrameData, 0, 1, make([]byte, 16385))
		}, "frame too large"},
		{"reset", func(fr *http2.Framer) { fr.WriteRSTStream(1, http2.ErrCodeRefusedStream) }, "stream reset (REFUSED_STREAM)"},
		{"bad status", func(fr *http2.Framer) {
			var hb bytes.Buffer
			hpack.NewEncoder(&hb).WriteField(hpack.HeaderField{Name: ":status", Value: "20x"})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
		}, `status: HTTP/2 :status "20x" is not three digits`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				buf := make([]byte, len(http2.ClientPreface))
				conn.Read(buf)
				fr := http2.NewFramer(conn, conn)
				fr.WriteSettings()
				c.reply(fr)
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				conn.Read(make([]byte, 1024)) // until the probe closes
			}()
			err = Probe(context.Background(), d.DialContext, Config{URI: "/", Timeout: 2 * time.Second, H2C: true}, ln.Addr().String())
			switch {
			case c.want == "" && err != nil:
				t.Errorf("got %v, want a pass", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// FuzzProbeH2C: whatever bytes a backend answers an h2c probe with, the
// probe ends (within its timeout) without a panic, and passes only on a
// HEADERS frame of stream 1 with a 2xx :status.
func FuzzProbeH2C(f *testing.F) {
	var ok bytes.Buffer
	fr := http2.NewFramer(&ok, nil)
	fr.WriteSettings()
	var hb bytes.Buffer
	hpack.NewEncoder(&hb).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	f.Add(ok.Bytes())
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, answer []byte) {
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, s := net.Pipe()
			s.SetDeadline(time.Now().Add(time.Second))
			go func() { // what the probe writes, taken until it closes
				buf := make([]byte, 4096)
				for {
					if _, err := s.Read(buf); err != nil {
						return
					}
				}
			}()
			go func() {
				s.Write(answer)
				s.Close()
			}()
			return c, nil
		}
		err := Probe(context.Background(), dial, Config{URI: "/", Timeout: time.Second, H2C: true}, "x")
		if err == nil && !bytes.ContainsAny(answer, "\x88\x89\x8a2") {
			// A 2xx :status is the static table's 200, 204 or 206
			// (0x88-0x8a), or a literal with its digits.
			t.Fatalf("passed on %q", answer)
		}
	})
}
