package h2c

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestTinyFramesHoldTheirWindow: a backend that sends its chunked response
// body in 1-byte DATA frames to a reader that stopped makes the stream
// hold about its window, not the 6 bytes of chunk framing per frame (the
// window reckons payload only).
func TestTinyFramesHoldTheirWindow(t *testing.T) {
	const frames = 20000
	p := scriptedBackend(t, func(f *http2.Framer, b func(kv ...string) []byte) {
		f.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b(":status", "200"), EndHeaders: true})
		for range frames {
			if f.WriteData(1, false, []byte("x")) != nil {
				return
			}
		}
	})
	defer p.Close()
	st, _, err := p.Open(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, len("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"))
	if _, err := io.ReadFull(st, head); err != nil || !strings.Contains(string(head), "chunked") {
		t.Fatalf("head %q: %v", head, err)
	}
	in := st.cur.Load()
	waitFor(t, func() bool {
		in.c.mu.Lock()
		defer in.c.mu.Unlock()
		return in.recvWin == DefaultStreamWindow-frames
	})
	in.c.mu.Lock()
	held := len(in.rbuf) - in.roff + len(in.chunk)
	in.c.mu.Unlock()
	if held > frames+64 {
		t.Errorf("%d 1-byte DATA frames held as %d bytes", frames, held)
	}
	// Read back: one chunk of all of them.
	want := "4e20\r\n" + strings.Repeat("x", frames) + "\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(st, got); err != nil || string(got) != want {
		t.Fatalf("body: %v, %q...", err, got[:min(len(got), 16)])
	}
}

// TestBackendConnectionErrors: frames a server must not send end the
// connection with the RFC's error code, and the stream in flight fails.
func TestBackendConnectionErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(f *http2.Framer, b func(kv ...string) []byte)
		code   http2.ErrCode
	}{
		{"DATA frame larger than SETTINGS_MAX_FRAME_SIZE", func(f *http2.Framer, b func(kv ...string) []byte) {
			f.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b(":status", "200"), EndHeaders: true})
			f.WriteData(1, true, make([]byte, 20000)) // RFC 9113 §4.2
		}, http2.ErrCodeFrameSize},
		{"SETTINGS_ENABLE_PUSH = 1", func(f *http2.Framer, _ func(kv ...string) []byte) {
			f.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 1}) // RFC 9113 §6.5.2
		}, http2.ErrCodeProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			goAway := make(chan http2.ErrCode, 1)
			p := scriptedBackend(t, func(f *http2.Framer, b func(kv ...string) []byte) {
				tc.script(f, b)
				for {
					fr, err := f.ReadFrame()
					if err != nil {
						return
					}
					if g, ok := fr.(*http2.GoAwayFrame); ok {
						goAway <- g.ErrCode
						return
					}
				}
			})
			defer p.Close()
			got, err := exchange(p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			if err == nil {
				t.Fatalf("exchange answered %q", got)
			}
			select {
			case code := <-goAway:
				if code != tc.code {
					t.Fatalf("GOAWAY %v, want %v", code, tc.code)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no GOAWAY")
			}
		})
	}
}

// TestStuckWriterHoldsNoCanceller: while a write holds the connection's
// write lock (as one stuck in write(2) to a backend that stopped reading
// does, up to WriteTimeout; the test holds the lock itself), closing
// (cancelling) a stream returns at once, since a client's cancel runs on
// its connection's reader, and its RST_STREAM goes out once the lock is
// free; a new request waits no longer than its write deadline for that
// connection, then goes out on another.
func TestStuckWriterHoldsNoCanceller(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	resets := make(chan uint32, 4)
	conns := make(chan int, 4) // the index of the connection each HEADERS came on
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(i int) {
				defer c.Close()
				preface := make([]byte, len(http2.ClientPreface))
				io.ReadFull(c, preface)
				fr := http2.NewFramer(c, c)
				fr.WriteSettings()
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					switch f := f.(type) {
					case *http2.RSTStreamFrame:
						if f.ErrCode == http2.ErrCodeCancel {
							resets <- f.StreamID
						}
					case *http2.HeadersFrame:
						conns <- i
					}
				}
			}(i)
		}
	}()
	p := poolTo(ln, Options{MaxConns: 1})
	defer p.Close()
	open := func() *Stream {
		st, _, err := p.Open(context.Background(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		st.SetDeadline(time.Now().Add(30 * time.Second))
		return st
	}
	victim := open()
	if _, err := victim.Write([]byte("GET /v HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if i := <-conns; i != 0 {
		t.Fatalf("the first request came on connection %d", i)
	}
	vs := victim.cur.Load()
	c := vs.c
	c.wmu.Lock() // a write stuck in write(2)
	locked := true
	defer func() {
		if locked {
			c.wmu.Unlock()
		}
	}()

	closed := make(chan struct{})
	go func() { victim.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("closing a stream waited for the stuck write")
	}

	// A new request: refused by the stuck connection at its write
	// deadline, it is sent again on a new one, which takes no stream.
	late := open()
	defer late.Close()
	late.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := late.Write([]byte("GET /late HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
		t.Fatalf("a request beside a stuck write: %v", err)
	}
	select {
	case i := <-conns:
		if i != 1 {
			t.Fatalf("the request beside a stuck write came on connection %d, want a new one", i)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request beside a stuck write never reached the backend")
	}

	c.wmu.Unlock()
	locked = false
	select {
	case id := <-resets:
		if id != vs.id {
			t.Fatalf("RST_STREAM CANCEL for stream %d, want %d", id, vs.id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled stream's RST_STREAM never reached the backend")
	}
}

// TestHandshakeErrorEndsOpen: a connection error in the backend's first
// SETTINGS (ENABLE_PUSH = 1) fails the open with that error, not with the
// timeout of a backend that sent no SETTINGS.
func TestHandshakeErrorEndsOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		http2.NewFramer(c, c).WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 1})
		io.Copy(io.Discard, c)
	}()
	p := poolTo(ln, Options{})
	defer p.Close()
	_, _, err = p.Open(context.Background(), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "ENABLE_PUSH") {
		t.Fatalf("open: %v, want the ENABLE_PUSH connection error", err)
	}
}

// TestCancelNeverExceedsMaxStreams: with SETTINGS_MAX_CONCURRENT_STREAMS
// = 1, a cancelled stream's slot goes to the next request only once its
// RST_STREAM went out: the backend never sees two streams open at once
// (RFC 9113 §5.1.2), which it would refuse or answer with PROTOCOL_ERROR.
func TestCancelNeverExceedsMaxStreams(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	over := make(chan uint32, 100)
	read := make(chan struct{}) // closed once the backend read all the pool sent
	go func() {
		defer close(read)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		preface := make([]byte, len(http2.ClientPreface))
		io.ReadFull(c, preface)
		fr := http2.NewFramer(c, c)
		fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
		open := map[uint32]bool{}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.HeadersFrame:
				open[f.StreamID] = true
				if len(open) > 1 {
					over <- f.StreamID
				}
			case *http2.RSTStreamFrame:
				delete(open, f.StreamID)
			}
		}
	}()
	p := poolTo(ln, Options{MaxConns: 1})
	defer p.Close()
	for i := range 20 {
		st, _, err := p.Open(context.Background(), 5*time.Second)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		st.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := st.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		st.Close() // the client went away
	}
	// Closing the pool ends its connection after what it wrote (the last
	// RST_STREAM included): once the backend read up to its end, every
	// HEADERS the pool sent has been checked.
	p.Close()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend's connection did not end within 10 s of the pool's close")
	}
	select {
	case id := <-over:
		t.Fatalf("HEADERS of stream %d beyond SETTINGS_MAX_CONCURRENT_STREAMS = 1", id)
	default:
	}
}
