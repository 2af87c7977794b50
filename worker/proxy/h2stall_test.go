package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2StalledStreamsHoldTheirWindow: streams whose client reads the
// connection but grants no more window (a slow reader, RFC 9113 §5.2) hold
// no more than their window of response bytes: each stream session waits
// with its backend and output buffers given back (a counter: only its read
// buffer and exchange state stay checked out), and the whole cost of a
// stalled stream, proxy and test backend together, stays under a default
// window (64 KiB; it was about 130 KiB when a session waited in Write with
// its buffers and the stream's 32 KiB output buffer full). Content-Length
// and chunked responses take different body paths.
func TestH2StalledStreamsHoldTheirWindow(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(map[bool]string{false: "length", true: "chunked"}[chunked], func(t *testing.T) {
			testH2StalledStreams(t, chunked)
		})
	}
}

func testH2StalledStreams(t *testing.T, chunked bool) {
	const (
		streams = 80
		window  = 65535
		body    = 8 << 20
		// What a stalled stream may cost in all, in the proxy: its
		// session's read buffer and exchange state (about 36 KiB) and
		// small structures; the test backend costs little (one shared
		// chunk, no bufio). It was about 120 KiB.
		maxPerStream = 56 << 10
	)
	b := rawStreamingBackend(t, chunked, body)
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b}}, func(l *Listener) {
		l.TLS = conf
		l.FrontTimeout = 30 * time.Second
	})

	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	out0 := BuffersCheckedOut()

	fr := dialH2Raw(t, f.addr, "a.test", 30*time.Second, window)
	fr.WriteWindowUpdate(0, 16<<20) // only the streams' windows stall them
	for i := range streams {
		writeH2Get(fr, uint32(2*i+1), "a.test", "/big")
	}

	// The reader: acknowledges SETTINGS, counts the responses' heads and
	// DATA, grants nothing.
	var heads, data atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		for {
			fr2, err := fr.ReadFrame()
			if err != nil {
				readErr <- err
				return
			}
			switch fr2 := fr2.(type) {
			case *http2.SettingsFrame:
				if !fr2.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				heads.Add(1)
			case *http2.DataFrame:
				data.Add(int64(len(fr2.Data())))
			case *http2.RSTStreamFrame:
				readErr <- fmt.Errorf("stream %d reset: %v", fr2.StreamID, fr2.ErrCode)
				return
			case *http2.GoAwayFrame:
				readErr <- fmt.Errorf("GOAWAY %v", fr2.ErrCode)
				return
			}
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	var perStream, held int64
	for {
		select {
		case err := <-readErr:
			t.Fatalf("client: %v", err)
		default:
		}
		if heads.Load() == streams && data.Load() == streams*window {
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&ms)
			perStream = (int64(ms.HeapAlloc) - int64(base)) / streams
			held = BuffersCheckedOut() - out0
			// Each session: its read buffer and exchange state; the
			// connection's own session, one read buffer at most.
			if held <= 2*streams+1 && perStream < maxPerStream {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d heads and %d DATA bytes received (want %d and %d); %d pooled buffers held by %d stalled streams "+
				"(want at most %d); %d heap bytes per stalled stream (want < %d)",
				heads.Load(), data.Load(), streams, streams*window, held, streams, 2*streams+1, perStream, maxPerStream)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d stalled streams: %d pooled buffers held, %d heap bytes each (want < %d)", streams, held, perStream, maxPerStream)
}

// rawStreamingBackend is an origin that answers the first request of each
// connection with a body of size bytes (Content-Length, or chunked),
// written from one shared chunk: its own memory per connection is a
// goroutine and a small read buffer, so that a test measuring the proxy's
// heap measures little of it.
func rawStreamingBackend(t *testing.T, chunked bool, size int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	chunk := make([]byte, 16<<10)
	head := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	if chunked {
		head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		chunk = append([]byte(fmt.Sprintf("%x\r\n", len(chunk))), append(chunk, "\r\n"...)...)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req [1024]byte
				var got []byte
				for !bytes.Contains(got, []byte("\r\n\r\n")) {
					n, err := c.Read(req[:])
					if err != nil {
						return
					}
					got = append(got, req[:n]...)
				}
				if _, err := c.Write([]byte(head)); err != nil {
					return
				}
				for range size / (16 << 10) {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
				if chunked {
					c.Write([]byte("0\r\n\r\n"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestH2SmallWindowCompletes: a client granting a small window back as it
// reads gets the whole response, however often its stream waits for
// window (h2.Stream.WaitRoom is woken by the client's WINDOW_UPDATE, not by
// the write timeout, which is long here).
func TestH2SmallWindowCompletes(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(map[bool]string{false: "length", true: "chunked"}[chunked], func(t *testing.T) {
			const (
				window = 1000
				body   = 1 << 20
			)
			b := rawStreamingBackend(t, chunked, body)
			conf := testTLSConfig(t, "a.test")
			conf.NextProtos = []string{"h2"}
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {b}}, func(l *Listener) {
				l.TLS = conf
				l.FrontTimeout = time.Minute
			})
			fr := dialH2Raw(t, f.addr, "a.test", 20*time.Second, window)
			writeH2Get(fr, 1, "a.test", "/big")
			got := 0
			for {
				fr2, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("after %d of %d body bytes: %v", got, body, err)
				}
				switch fr2 := fr2.(type) {
				case *http2.SettingsFrame:
					if !fr2.IsAck() {
						fr.WriteSettingsAck()
					}
				case *http2.DataFrame:
					n := len(fr2.Data())
					if n > window {
						t.Fatalf("a DATA frame of %d bytes in a %d-byte window", n, window)
					}
					got += n
					if fr2.StreamEnded() {
						if got != body {
							t.Fatalf("the response ended after %d body bytes, want %d", got, body)
						}
						return
					}
					if n > 0 {
						fr.WriteWindowUpdate(0, uint32(n))
						fr.WriteWindowUpdate(1, uint32(n))
					}
				case *http2.RSTStreamFrame:
					t.Fatalf("stream reset after %d body bytes: %v", got, fr2.ErrCode)
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY after %d body bytes: %v", got, fr2.ErrCode)
				}
			}
		})
	}
}

// dialH2Raw opens an HTTP/2 connection (TLS, ALPN h2, SNI sni) to addr for
// a raw frame client, closed at the end of the test: the preface, then
// SETTINGS with the initial stream window. Every read and write must end
// within limit.
func dialH2Raw(t *testing.T, addr, sni string, limit time.Duration, window uint32) *http2.Framer {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: sni, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(limit))
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	return fr
}

// writeH2Get sends a GET of path on stream id, with no body.
func writeH2Get(fr *http2.Framer, id uint32, authority, path string) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", authority}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
}
