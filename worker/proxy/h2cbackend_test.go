package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/worker/backends"
)

// h2cScript answers one request stream of a raw h2c backend: it runs on
// the connection's reader, with the request's HEADERS.
type h2cScript func(w *h2cRaw, h *http2.MetaHeadersFrame)

// h2cRaw is one connection of a raw-frame h2c backend.
type h2cRaw struct {
	nc   net.Conn
	fr   *http2.Framer
	mu   sync.Mutex
	buf  bytes.Buffer
	enc  *hpack.Encoder
	seen chan http2.Frame // every frame the proxy sent, when not nil

	// Flow control of what the backend sends (sendFlow), guarded by mu.
	cond    *sync.Cond
	connWin int64
	initWin int64
	win     map[uint32]int64 // -1: reset
	got     map[uint32]int64 // request DATA bytes received per stream
}

// sendFlow sends n body bytes on stream id within the proxy's windows,
// then END_STREAM; it returns early when the stream is reset or a write
// fails. sent counts the bytes sent.
func (w *h2cRaw) sendFlow(id uint32, n int64, sent *atomic.Int64) {
	chunk := make([]byte, 16384)
	for n > 0 {
		w.mu.Lock()
		for w.win[id] == 0 || w.connWin <= 0 {
			w.cond.Wait()
		}
		if w.win[id] < 0 {
			w.mu.Unlock()
			return
		}
		k := min(n, w.win[id], w.connWin, int64(len(chunk)))
		w.win[id] -= k
		w.connWin -= k
		err := w.fr.WriteData(id, n == k, chunk[:k])
		w.mu.Unlock()
		if err != nil {
			return
		}
		sent.Add(k)
		n -= k
	}
}

// block encodes fields (name, value pairs) as one HPACK block.
func (w *h2cRaw) block(kv ...string) []byte {
	w.buf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		w.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), w.buf.Bytes()...)
}

func (w *h2cRaw) headers(id uint32, end bool, kv ...string) {
	w.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: w.block(kv...), EndHeaders: true, EndStream: end})
}

// rawH2cBackend is an h2c backend speaking raw frames: settings are its
// SETTINGS, script answers each request's HEADERS; frames the proxy
// sends are copied to seen when it is not nil.
func rawH2cBackend(t *testing.T, settings []http2.Setting, seen chan http2.Frame, script h2cScript) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(c, preface); err != nil {
					return
				}
				w := &h2cRaw{nc: c, fr: http2.NewFramer(c, c), seen: seen,
					connWin: 65535, initWin: 65535, win: map[uint32]int64{}, got: map[uint32]int64{}}
				w.cond = sync.NewCond(&w.mu)
				defer func() {
					w.mu.Lock()
					for id := range w.win {
						w.win[id] = -1
					}
					w.cond.Broadcast()
					w.mu.Unlock()
				}()
				w.fr.AllowIllegalWrites = true
				w.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
				w.enc = hpack.NewEncoder(&w.buf)
				w.fr.WriteSettings(settings...)
				for {
					f, err := w.fr.ReadFrame()
					if err != nil {
						return
					}
					if w.seen != nil {
						select {
						case w.seen <- f:
						default:
						}
					}
					w.mu.Lock()
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if !f.IsAck() {
							if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
								for id, n := range w.win {
									if n >= 0 {
										w.win[id] = n + int64(v) - w.initWin
									}
								}
								w.initWin = int64(v)
							}
							w.fr.WriteSettingsAck()
						}
					case *http2.WindowUpdateFrame:
						if f.StreamID == 0 {
							w.connWin += int64(f.Increment)
						} else if w.win[f.StreamID] >= 0 {
							w.win[f.StreamID] += int64(f.Increment)
						}
					case *http2.RSTStreamFrame:
						w.win[f.StreamID] = -1
					case *http2.DataFrame:
						w.got[f.StreamID] += int64(f.Length)
					case *http2.MetaHeadersFrame:
						if _, ok := w.win[f.StreamID]; !ok {
							w.win[f.StreamID] = w.initWin
						}
					}
					w.cond.Broadcast()
					w.mu.Unlock()
					if h, ok := f.(*http2.MetaHeadersFrame); ok && h.PseudoValue("method") != "" {
						script(w, h)
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// newH2cFixture is a proxy whose cluster "c" has the h2c backend at addr
// (http2 = true).
func newH2cFixture(t *testing.T, addr string, setup func(*Listener)) *fixture {
	t.Helper()
	reg := backends.NewRegistry(backends.Options{})
	t.Cleanup(reg.Close)
	sets := reg.Update([]backends.Spec{{ClusterID: "c", ID: "c-a", Addr: netip.MustParseAddrPort(addr), Weight: 100}},
		map[string]backends.Policy{"c": {HTTP2: true}})
	return newFixture(t, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) {
		l.Clusters["c"].Backends = sets["c"]
		if setup != nil {
			setup(l)
		}
	})
}

// TestH2cBackendCutNeverLooksComplete: an h2c backend that loses its
// connection, or resets its stream, mid-body never gives an HTTP/1.1
// client a response that looks complete: no terminating chunk, no
// Content-Length satisfied, and the connection is closed.
func TestH2cBackendCutNeverLooksComplete(t *testing.T) {
	for _, tc := range []struct {
		name string
		cl   bool
		end  func(w *h2cRaw, id uint32)
	}{
		{"chunked, connection closed", false, func(w *h2cRaw, id uint32) { w.nc.Close() }},
		{"chunked, RST_STREAM NO_ERROR", false, func(w *h2cRaw, id uint32) { w.fr.WriteRSTStream(id, http2.ErrCodeNo) }},
		{"chunked, RST_STREAM INTERNAL_ERROR", false, func(w *h2cRaw, id uint32) { w.fr.WriteRSTStream(id, http2.ErrCodeInternal) }},
		{"chunked, RST_STREAM REFUSED_STREAM", false, func(w *h2cRaw, id uint32) { w.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) }},
		{"chunked, GOAWAY below it then close", false, func(w *h2cRaw, id uint32) {
			w.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
			w.nc.Close()
		}},
		{"content-length, connection closed", true, func(w *h2cRaw, id uint32) { w.nc.Close() }},
		{"content-length, RST_STREAM REFUSED_STREAM", true, func(w *h2cRaw, id uint32) { w.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			part := make(chan struct{}) // closed once the client has the head and "hello"
			addr := rawH2cBackend(t, nil, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
				kv := []string{":status", "200"}
				if tc.cl {
					kv = append(kv, "content-length", "10")
				}
				w.headers(h.StreamID, false, kv...)
				w.fr.WriteData(h.StreamID, false, []byte("hello"))
				// The cut comes mid-response: once the client has what
				// came before it (or, from a proxy that holds it back,
				// after 5 s: then a 502 is right).
				select {
				case <-part:
				case <-time.After(5 * time.Second):
				}
				tc.end(w, h.StreamID)
			})
			f := newH2cFixture(t, addr, nil)
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			var b []byte
			for buf := make([]byte, 4096); ; {
				n, err := c.Read(buf)
				b = append(b, buf[:n]...)
				if n > 0 && bytes.Contains(b, []byte("hello")) && bytes.Contains(b, []byte("\r\n\r\n")) {
					select {
					case <-part:
					default:
						close(part)
					}
				}
				if err != nil {
					break
				}
			}
			out := string(b)
			if !strings.HasPrefix(out, "HTTP/1.1 200") && !strings.HasPrefix(out, "HTTP/1.1 502") {
				t.Fatalf("got %q", out)
			}
			if strings.HasPrefix(out, "HTTP/1.1 200") {
				if strings.HasSuffix(out, "0\r\n\r\n") {
					t.Fatalf("a cut response ends with the last chunk: %q", out)
				}
				if tc.cl && strings.HasSuffix(out, "\r\n\r\nhello") == false {
					t.Fatalf("got %q", out)
				}
			}
		})
	}
}

// TestH2cBackendGoAwayMidFlight: a backend with streams 1 and 3 in flight
// sends GOAWAY(last-stream-id 1): stream 1 completes on that connection,
// stream 3 (a POST with a body, not processed) is sent again on a new
// connection and completes there.
func TestH2cBackendGoAwayMidFlight(t *testing.T) {
	var mu sync.Mutex
	conns := map[*h2cRaw]int{}
	first := make(chan struct{})
	addr := rawH2cBackend(t, nil, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		mu.Lock()
		n, ok := conns[w]
		if !ok {
			n = len(conns)
			conns[w] = n
		}
		mu.Unlock()
		switch {
		case n > 0:
			w.headers(h.StreamID, false, ":status", "200", "content-length", "3")
			w.fr.WriteData(h.StreamID, true, []byte("new"))
		case h.StreamID == 1:
			close(first)
		default:
			w.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
			w.headers(1, false, ":status", "200", "content-length", "3")
			w.fr.WriteData(1, true, []byte("old"))
		}
	})
	f := newH2cFixture(t, addr, nil)
	outs := make(chan string, 2)
	go func() {
		outs <- "A " + exchangeRaw(t, f.addr, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	}()
	<-first
	go func() {
		outs <- "B " + exchangeRaw(t, f.addr, "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	}()
	for range 2 {
		out := <-outs
		want := "\r\n\r\nold"
		if out[0] == 'B' {
			want = "\r\n\r\nnew"
		}
		if !strings.HasPrefix(out[2:], "HTTP/1.1 200") || !strings.HasSuffix(out, want) {
			t.Errorf("got %q", out)
		}
	}
}

// TestH2cBackendClientCancel: an HTTP/1.1 client that goes away mid-
// response, and an HTTP/2 client that resets its stream, get the backend
// stream reset (RST_STREAM CANCEL).
func TestH2cBackendClientCancel(t *testing.T) {
	seen := make(chan http2.Frame, 100)
	started := make(chan uint32, 10)
	addr := rawH2cBackend(t, nil, seen, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		w.headers(h.StreamID, false, ":status", "200")
		w.fr.WriteData(h.StreamID, false, []byte("partial"))
		started <- h.StreamID
		if h.PseudoValue("path") == "/more" {
			// An HTTP/1.1 client's close is seen at the next write to
			// it (as with an HTTP/1.1 backend): more of the body comes.
			id := h.StreamID
			go func() {
				for range 100 {
					time.Sleep(20 * time.Millisecond)
					w.mu.Lock()
					err := w.fr.WriteData(id, false, []byte("more"))
					w.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2", "http/1.1"}
	h1 := newH2cFixture(t, addr, nil)
	h2f := newH2cFixture(t, addr, func(l *Listener) { l.TLS = conf })
	waitReset := func(id uint32) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case f := <-seen:
				if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == id {
					return
				}
			case <-timeout:
				t.Fatalf("no RST_STREAM for backend stream %d", id)
			}
		}
	}
	t.Run("HTTP/1.1 client closes", func(t *testing.T) {
		c, err := net.Dial("tcp", h1.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /more HTTP/1.1\r\nHost: a\r\n\r\n")
		id := <-started
		buf := make([]byte, 100)
		c.Read(buf)
		c.Close()
		waitReset(id)
	})
	t.Run("HTTP/2 client resets", func(t *testing.T) {
		h := dialH2(t, h2f)
		h.get(1, "/")
		id := <-started
		h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		waitReset(id)
	})
	t.Run("HTTP/2 client closes", func(t *testing.T) {
		h := dialH2(t, h2f)
		h.get(1, "/")
		id := <-started
		h.c.Close()
		waitReset(id)
	})
}

// settled waits until n stops growing for 500 ms, at most 10 s, and
// returns it. It sleeps to show an absence (no more bytes move: flow
// control holds), for which there is no barrier to wait on: a backend
// blocked on a window cannot tell a window that will never come from one
// still on its way. The callers check a bound on n: a proxy that kept
// taking bytes would pass it within the 10 s.
func settled(n func() int64) int64 {
	last := n()
	for i := 0; i < 20; i++ {
		time.Sleep(500 * time.Millisecond)
		v := n()
		if v == last {
			return v
		}
		last = v
	}
	return last
}

// TestH2cBackendSlowReaderBounded: a client that stops reading a large
// response stops the backend within the windows and socket buffers: the
// proxy buffers no more than its stream windows.
func TestH2cBackendSlowReaderBounded(t *testing.T) {
	var sent atomic.Int64
	addr := rawH2cBackend(t, nil, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		w.mu.Lock()
		w.headers(h.StreamID, false, ":status", "200")
		w.mu.Unlock()
		go w.sendFlow(h.StreamID, 1<<30, &sent)
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2", "http/1.1"}
	h1 := newH2cFixture(t, addr, nil)
	h2f := newH2cFixture(t, addr, func(l *Listener) { l.TLS = conf })

	t.Run("HTTP/1.1", func(t *testing.T) {
		sent.Store(0)
		c, err := net.Dial("tcp", h1.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(4096)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		buf := make([]byte, 100)
		c.Read(buf)
		n := settled(sent.Load)
		t.Logf("backend sent %d bytes to a client that stopped reading", n)
		if n > 16<<20 {
			t.Fatalf("backend sent %d bytes to a client that stopped reading", n)
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		sent.Store(0)
		h := dialH2(t, h2f)
		h.get(1, "/")
		n := settled(sent.Load)
		t.Logf("backend sent %d bytes to an HTTP/2 client that grants no window", n)
		if n > 1<<20 {
			t.Fatalf("backend sent %d bytes to an HTTP/2 client that grants no window", n)
		}
	})
}

// TestH2cBackendStalledUpload: a backend that grants no window beyond its
// initial one gets no more DATA than that, and the client's upload
// stalls: the proxy does not buffer it.
func TestH2cBackendStalledUpload(t *testing.T) {
	var conn atomic.Pointer[h2cRaw]
	var id atomic.Uint32
	addr := rawH2cBackend(t, nil, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		conn.Store(w)
		id.Store(h.StreamID)
	})
	f := newH2cFixture(t, addr, func(l *Listener) { l.BackTimeout = 20 * time.Second })
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 256 << 20
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
	var wrote atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		for wrote.Load() < size {
			n, err := c.Write(buf)
			wrote.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	n := settled(wrote.Load)
	w := conn.Load()
	if w == nil {
		t.Fatal("no request at the backend")
	}
	w.mu.Lock()
	got := w.got[id.Load()]
	w.mu.Unlock()
	t.Logf("client wrote %d bytes, backend got %d", n, got)
	if got > 65535 {
		t.Fatalf("backend got %d bytes beyond its 65535-byte window", got)
	}
	if n > 16<<20 {
		t.Fatalf("the proxy took %d bytes of an upload the backend does not read", n)
	}
}

// TestH2cBackendEarlyResponse: a backend that answers before the request
// body is in, then stops the upload with RST_STREAM(NO_ERROR) (RFC 9113
// §8.1), gives the client its complete response.
func TestH2cBackendEarlyResponse(t *testing.T) {
	addr := rawH2cBackend(t, nil, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.headers(h.StreamID, false, ":status", "413", "content-length", "4")
		w.fr.WriteData(h.StreamID, true, []byte("nope"))
		w.fr.WriteRSTStream(h.StreamID, http2.ErrCodeNo)
	})
	f := newH2cFixture(t, addr, nil)
	out := uploadForever(t, f.addr, 5*time.Second)
	if !strings.HasPrefix(string(out), "HTTP/1.1 413") || !strings.HasSuffix(string(out), "\r\n\r\nnope") {
		t.Fatalf("got %q", out)
	}
}

// TestH2cBackendNoStreams: a backend whose SETTINGS_MAX_CONCURRENT_STREAMS
// is 0 gets no stream: the client gets 503 once the connect timeout
// passes.
func TestH2cBackendNoStreams(t *testing.T) {
	var heads atomic.Int32
	addr := rawH2cBackend(t, []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 0}}, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		heads.Add(1)
	})
	f := newH2cFixture(t, addr, func(l *Listener) { l.ConnectTimeout = 300 * time.Millisecond })
	out := exchangeRaw(t, f.addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 503") || heads.Load() != 0 {
		t.Fatalf("got %q, %d streams opened", out, heads.Load())
	}
}

// TestH2cBackendTrailers: a backend's trailers reach an HTTP/1.1 client
// in the last chunk and an HTTP/2 client as a trailing HEADERS frame.
func TestH2cBackendTrailers(t *testing.T) {
	addr := rawH2cBackend(t, nil, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.headers(h.StreamID, false, ":status", "200", "content-type", "application/grpc")
		w.fr.WriteData(h.StreamID, false, []byte("body"))
		w.headers(h.StreamID, true, "grpc-status", "0", "x-trail", "yes")
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2", "http/1.1"}
	h1 := newH2cFixture(t, addr, nil)
	h2f := newH2cFixture(t, addr, func(l *Listener) { l.TLS = conf })

	out := exchangeRaw(t, h1.addr, "GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n")
	if !strings.HasSuffix(out, "4\r\nbody\r\n0\r\ngrpc-status: 0\r\nx-trail: yes\r\n\r\n") {
		t.Errorf("HTTP/1.1: got %q", out)
	}

	h := dialH2(t, h2f)
	h.get(1, "/", "te", "trailers")
	dec := hpack.NewDecoder(4096, nil)
	var blocks [][]hpack.HeaderField
	var body []byte
	for done := false; !done; {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch fr := fr.(type) {
		case *http2.HeadersFrame:
			fs, err := dec.DecodeFull(fr.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			blocks = append(blocks, fs)
			done = fr.StreamEnded()
		case *http2.DataFrame:
			body = append(body, fr.Data()...)
			done = fr.StreamEnded()
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM %v", fr.ErrCode)
		}
	}
	if string(body) != "body" || len(blocks) != 2 {
		t.Fatalf("HTTP/2: body %q, %d header blocks: %v", body, len(blocks), blocks)
	}
	got := map[string]string{}
	for _, f := range blocks[1] {
		got[f.Name] = f.Value
	}
	if got["grpc-status"] != "0" || got["x-trail"] != "yes" {
		t.Fatalf("HTTP/2 trailers %v", blocks[1])
	}
}

// TestH2cBackendRefusedStream: a stream the backend refuses with
// RST_STREAM(REFUSED_STREAM) was not processed: a POST is sent again and
// answered; one whose body is too large to hold is answered 502.
func TestH2cBackendRefusedStream(t *testing.T) {
	var n atomic.Int32
	addr := rawH2cBackend(t, nil, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if n.Add(1)%2 == 1 {
			w.fr.WriteRSTStream(h.StreamID, http2.ErrCodeRefusedStream)
			return
		}
		w.headers(h.StreamID, false, ":status", "200", "content-length", "2")
		w.fr.WriteData(h.StreamID, true, []byte("ok"))
	})
	f := newH2cFixture(t, addr, nil)
	out := exchangeRaw(t, f.addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	if !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.HasSuffix(out, "\r\n\r\nok") || n.Load() != 2 {
		t.Fatalf("got %q after %d streams", out, n.Load())
	}
}

// TestH2cBackendStalledUploadTimesOut: an upload the backend stops
// granting window to ends at the back timeout: 504, and the backend
// stream is reset.
func TestH2cBackendStalledUploadTimesOut(t *testing.T) {
	seen := make(chan http2.Frame, 1000)
	addr := rawH2cBackend(t, nil, seen, func(w *h2cRaw, h *http2.MetaHeadersFrame) {})
	f := newH2cFixture(t, addr, func(l *Listener) { l.BackTimeout = 500 * time.Millisecond })
	out := uploadForever(t, f.addr, 10*time.Second)
	if !strings.HasPrefix(string(out), "HTTP/1.1 504") {
		t.Fatalf("got %q", out)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-seen:
			if _, ok := f.(*http2.RSTStreamFrame); ok {
				return
			}
		case <-timeout:
			t.Fatal("the stalled stream was not reset")
		}
	}
}

// TestH2cBackendOneStreamPerConnection: a backend allowing one stream per
// connection gets no second stream on a connection; concurrent requests
// queue or open more connections, and all are answered.
func TestH2cBackendOneStreamPerConnection(t *testing.T) {
	var mu sync.Mutex
	open := map[*h2cRaw]int{}
	var over atomic.Int32
	addr := rawH2cBackend(t, []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 1}}, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		mu.Lock()
		if open[w]++; open[w] > 1 {
			over.Add(1)
		}
		mu.Unlock()
		go func() {
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			open[w]--
			mu.Unlock()
			w.mu.Lock()
			w.headers(h.StreamID, false, ":status", "200", "content-length", "2")
			w.fr.WriteData(h.StreamID, true, []byte("ok"))
			w.mu.Unlock()
		}()
	})
	f := newH2cFixture(t, addr, nil)
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := exchangeRaw(t, f.addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if !strings.HasSuffix(out, "\r\n\r\nok") {
				t.Errorf("got %q", out)
			}
		}()
	}
	wg.Wait()
	if over.Load() != 0 {
		t.Fatalf("%d streams beyond SETTINGS_MAX_CONCURRENT_STREAMS = 1", over.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(open) > 4 {
		t.Fatalf("%d backend connections", len(open))
	}
}

// uploadForever sends addr a POST announcing a 10 MB body and writes body
// bytes until the proxy stops taking them, within limit; it returns what
// the proxy answered, read to the connection's end.
func uploadForever(t *testing.T, addr string, limit time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n")
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	out, _ := io.ReadAll(c)
	return out
}

// TestH2cBackendTakesTheProxysHead: a request the frontend accepts at its
// limits (a head just under 16 KiB, 127 field lines) reaches an h2c
// backend whole, as it reaches an HTTP/1.1 backend, though the fields the
// proxy adds (X-Forwarded-*, Forwarded, request ids) take its head past
// those limits: the head the stream converts is the proxy's own, not a
// peer's input, and was refused (502) when it was parsed again with the
// frontend's limits.
func TestH2cBackendTakesTheProxysHead(t *testing.T) {
	got := make(chan [2]int, 4) // fields, and the length of x-big
	addr := rawH2cBackend(t, nil, nil, func(w *h2cRaw, h *http2.MetaHeadersFrame) {
		n := 0
		for _, f := range h.Fields {
			if f.Name == "x-big" {
				n = len(f.Value)
			}
		}
		got <- [2]int{len(h.RegularFields()), n}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.headers(h.StreamID, true, ":status", "200")
	})
	f := newH2cFixture(t, addr, nil)
	big := strings.Repeat("v", 16<<10-100)
	var many strings.Builder
	for i := range 125 { // with Host and Connection, 127 field lines
		fmt.Fprintf(&many, "X-F%d: v\r\n", i)
	}
	for _, tc := range []struct {
		name, req string
		fields    int // at least, at the backend
		bigLen    int
	}{
		{"head near 16 KiB", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: " + big + "\r\n\r\n", 2, len(big)},
		{"127 field lines", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + many.String() + "\r\n", 126, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := exchangeRaw(t, f.addr, tc.req)
			if !strings.HasPrefix(out, "HTTP/1.1 200") {
				t.Fatalf("got %.80q, want 200", out)
			}
			g := <-got
			if g[0] < tc.fields || g[1] != tc.bigLen {
				t.Fatalf("the backend got %d fields and x-big of %d bytes, want %d+ and %d", g[0], g[1], tc.fields, tc.bigLen)
			}
		})
	}
}
