package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// framedBackend answers every request with body, framed as framing says
// ("length", "chunked" with chunks of random sizes and a trailer, or
// "close": delimited by the close), written in pieces of random sizes.
func framedBackend(t *testing.T, framing string, body []byte, seed uint64) string {
	b := newRawBackend(t, func(c net.Conn) {
		if _, err := readHeadFrom(bufio.NewReader(c)); err != nil {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 1))
		var out []byte
		switch framing {
		case "length":
			out = append([]byte("HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
		case "chunked":
			out = []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n")
			for rest := body; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(5000))
				out = fmt.Appendf(out, "%x\r\n", k)
				out = append(append(out, rest[:k]...), "\r\n"...)
				rest = rest[k:]
			}
			out = append(out, "0\r\nX-Sum: done\r\n\r\n"...)
		case "close":
			out = append([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"), body...)
		}
		for len(out) > 0 {
			k := min(len(out), 1+rng.IntN(9000))
			if _, err := c.Write(out[:k]); err != nil {
				return
			}
			out = out[k:]
		}
	})
	return b.addr
}

// TestH2TinyChangingWindows: a response's body reaches an HTTP/2 client
// byte for byte, whatever its framing, when the client grants window a
// few bytes at a time and changes SETTINGS_INITIAL_WINDOW_SIZE on the way,
// to 0 and to less than what the stream has sent (its window negative,
// RFC 9113 §6.9.2), granting back what makes the window positive again.
func TestH2TinyChangingWindows(t *testing.T) {
	body := make([]byte, 200<<10)
	for i := range body {
		body[i] = byte(i*31 + i>>9)
	}
	for _, framing := range []string{"length", "chunked", "close"} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("%s/%d", framing, seed), func(t *testing.T) {
				f := h2OnlyFixture(t, framedBackend(t, framing, body, seed))
				got, trailer := tinyWindowGet(t, f, seed)
				if !bytes.Equal(got, body) {
					i := 0
					for i < min(len(got), len(body)) && got[i] == body[i] {
						i++
					}
					t.Fatalf("got %d bytes, want %d; they differ from byte %d", len(got), len(body), i)
				}
				if framing == "chunked" && trailer != "done" {
					t.Fatalf("trailer x-sum %q, want done", trailer)
				}
			})
		}
	}
}

// tinyWindowGet fetches / on stream 1 with windows as TestH2TinyChangingWindows
// says, and returns the body and the x-sum trailer.
func tinyWindowGet(t *testing.T, f *fixture, seed uint64) ([]byte, string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	initial := int64(1 + rng.IntN(100))
	fr := dialH2Raw(t, f.addr, "a.test", 30*time.Second, uint32(initial))
	fr.WriteWindowUpdate(0, 1<<30)
	writeH2Get(fr, 1, "a.test", "/")
	dec := hpack.NewDecoder(4096, nil)
	win := initial // the stream's window as the client granted it
	var got []byte
	trailer := ""
	heads := 0
	for {
		fr2, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d body bytes: %v", len(got), err)
		}
		switch fr2 := fr2.(type) {
		case *http2.SettingsFrame:
			if !fr2.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(fr2.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			if heads++; heads > 1 {
				for _, hf := range fields {
					if hf.Name == "x-sum" {
						trailer = hf.Value
					}
				}
			}
			if fr2.StreamEnded() {
				return got, trailer
			}
		case *http2.DataFrame:
			n := int64(len(fr2.Data()))
			got = append(got, fr2.Data()...)
			if fr2.StreamEnded() {
				return got, trailer
			}
			win -= n // the connection's window (1 GiB) stays open
			// SETTINGS now and then: more would be a flood (h2 limits).
			switch rng.IntN(40) {
			case 0: // lower the initial window: to 0, or below what was sent
				next := int64(rng.IntN(int(initial) + 1))
				win += next - initial
				initial = next
				fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(initial)})
			case 1: // raise it
				next := initial + int64(rng.IntN(3000))
				win += next - initial
				initial = next
				fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(initial)})
			}
			if win <= 0 || rng.IntN(3) == 0 {
				inc := max(-win, 0) + 1 + int64(rng.IntN(2000))
				win += inc
				fr.WriteWindowUpdate(1, uint32(inc))
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset after %d body bytes: %v", len(got), fr2.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY after %d body bytes: %v", len(got), fr2.ErrCode)
		}
	}
}

// TestH2StalledStreamEnds: a stream session waiting for window
// (h2.Stream.WaitRoom, its buffers given back) ends when its stream does,
// however it does: reset by the client, its connection closed, its write
// timeout (front_timeout) or its idle timeout passed. Its backend
// connection is then closed, and every buffer it took is back.
func TestH2StalledStreamEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*Listener)
		end   func(f *fixture, fr *http2.Framer, c net.Conn)
	}{
		{"reset", nil, func(_ *fixture, fr *http2.Framer, _ net.Conn) { fr.WriteRSTStream(1, http2.ErrCodeCancel) }},
		{"connection closed", nil, func(_ *fixture, _ *http2.Framer, c net.Conn) { c.Close() }},
		{"front timeout", func(l *Listener) { l.FrontTimeout = 400 * time.Millisecond }, nil},
		{"stream idle timeout", func(l *Listener) { l.H2.StreamIdleTimeout = 400 * time.Millisecond }, nil},
		{"soft stop past the graceful deadline", func(l *Listener) { l.H2.GracefulShutdownDeadline = 400 * time.Millisecond },
			func(f *fixture, _ *http2.Framer, _ net.Conn) { go f.srv.Shutdown(context.Background()) }},
		{"hard stop", nil, func(f *fixture, _ *http2.Framer, _ net.Conn) { go f.srv.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone := make(chan struct{})
			b := newRawBackend(t, func(c net.Conn) {
				defer close(gone)
				if _, err := readHeadFrom(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
				chunk := make([]byte, 16<<10)
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			})
			conf := testTLSConfig(t, "a.test")
			conf.NextProtos = []string{"h2"}
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
				l.TLS = conf
				if tc.setup != nil {
					tc.setup(l)
				}
			})
			out0 := BuffersCheckedOut()
			c, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(15 * time.Second))
			io.WriteString(c, http2.ClientPreface)
			fr := http2.NewFramer(c, c)
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/"}} {
				enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
			}
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
			got := 0
			for got < 1000 { // the whole window: the stream then waits for room
				fr2, err := fr.ReadFrame()
				if err != nil {
					t.Fatal(err)
				}
				switch fr2 := fr2.(type) {
				case *http2.SettingsFrame:
					if !fr2.IsAck() {
						fr.WriteSettingsAck()
					}
				case *http2.DataFrame:
					got += len(fr2.Data())
				case *http2.RSTStreamFrame:
					t.Fatalf("reset after %d bytes: %v", got, fr2.ErrCode)
				}
			}
			go func() { // reads, so that the proxy's writes (a reset, GOAWAY) never block
				for {
					if _, err := fr.ReadFrame(); err != nil {
						return
					}
				}
			}()
			if tc.end != nil {
				tc.end(f, fr, c)
			}
			select {
			case <-gone:
			case <-time.After(10 * time.Second):
				t.Fatal("the backend connection of the stalled stream is still open 10 s on")
			}
			c.Close()
			waitFor(t, "the stalled stream's buffers given back", func() bool { return BuffersCheckedOut() == out0 })
		})
	}
}

// TestH2DuplexTinyWindow: a backend that answers while it reads the
// request body (echoing it back, chunked) serves an HTTP/2 client whose
// stream window is tiny: the request body copier runs while the session
// waits for window with its buffers given back; both bodies arrive byte
// for byte.
func TestH2DuplexTinyWindow(t *testing.T) {
	const size = 200 << 10 // within the proxy's initial windows: sent whole
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i*7 + i>>10)
	}
	b := newRawBackend(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		if _, err := readHeadFrom(r); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		buf := make([]byte, 3000)
		for left := size; left > 0; {
			n, err := r.Read(buf[:min(len(buf), left)])
			if n > 0 {
				fmt.Fprintf(c, "%x\r\n%s\r\n", n, buf[:n])
				left -= n
			}
			if err != nil {
				return
			}
		}
		io.WriteString(c, "0\r\n\r\n")
	})
	f := h2OnlyFixture(t, b.addr)
	c, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	var wmu sync.Mutex
	write := func(fn func() error) {
		wmu.Lock()
		defer wmu.Unlock()
		if err := fn(); err != nil {
			t.Error(err)
		}
	}
	const window = 700
	write(func() error { return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window}) })
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/echo"}, {"content-length", strconv.Itoa(size)}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	write(func() error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	})
	go func() {
		for off := 0; off < size; {
			k := min(size-off, 1+off%5000)
			write(func() error { return fr.WriteData(1, off+k == size, body[off:off+k]) })
			off += k
		}
	}()
	var got []byte
	for {
		fr2, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		switch fr2 := fr2.(type) {
		case *http2.SettingsFrame:
			if !fr2.IsAck() {
				write(fr.WriteSettingsAck)
			}
		case *http2.DataFrame:
			if len(fr2.Data()) > window {
				t.Fatalf("a DATA frame of %d bytes in a %d-byte window", len(fr2.Data()), window)
			}
			got = append(got, fr2.Data()...)
			if fr2.StreamEnded() {
				if !bytes.Equal(got, body) {
					t.Fatalf("echoed %d bytes, want %d, or they differ", len(got), size)
				}
				return
			}
			if n := uint32(len(fr2.Data())); n > 0 {
				write(func() error { return fr.WriteWindowUpdate(1, n) })
				write(func() error { return fr.WriteWindowUpdate(0, n) })
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("reset after %d bytes: %v", len(got), fr2.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY after %d bytes: %v", len(got), fr2.ErrCode)
		}
	}
}
