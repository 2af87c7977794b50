package h2c

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzResponseFrames feeds a connection frame sequences from a fake
// backend (over net.Pipe) while two requests are in flight, one of them
// with a body waiting for window: the reader must never panic, and after
// every frame the windows must hold their invariants (a stream's receive
// window plus what it buffers (framed or not) and owes equals its window; the
// connection's receive window plus what it owes equals the connection
// window; nothing buffered beyond a window).
//
// Input: records of [kind, flags, stream, length, payload...]; kind picks
// a frame type, stream one of 0, 1, 3, 5.
func FuzzResponseFrames(f *testing.F) {
	rec := func(kind, flags, stream byte, payload ...byte) []byte {
		return append([]byte{kind, flags, stream, byte(len(payload))}, payload...)
	}
	cat := func(rs ...[]byte) []byte { return bytes.Join(rs, nil) }
	f.Add(cat(rec(1, 0, 1, 1, 0, 0), rec(0, 1, 1, 'h', 'i')))                                         // 200, body, end
	f.Add(cat(rec(1, 0, 1, 1, 5, 0), rec(0, 0, 1, 1, 2, 3), rec(0, 1, 1, 4, 5)))                      // content-length 5
	f.Add(cat(rec(1, 0, 1, 0, 0, 0), rec(1, 0, 1, 1, 0, 0), rec(1, 1, 1, 1, 0, 0)))                   // 100, 200, trailers
	f.Add(cat(rec(5, 0, 0, 1), rec(6, 0, 0, 0, 1, 0, 0), rec(6, 0, 3, 0, 1, 0, 0)))                   // GOAWAY 1, windows
	f.Add(cat(rec(2, 0, 3, 7), rec(3, 0, 0, 0, 4, 0, 0, 0, 0), rec(4, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8))) // RST, SETTINGS, PING
	f.Add(cat(rec(1, 0, 1, 6, 0, 1), rec(0, 8, 1, 3, 0, 0, 0)))                                       // connection field; padded DATA
	f.Add(cat(rec(7, 4, 3, 0x88), rec(8, 0, 1, 0, 0, 0, 2)))                                          // raw HEADERS; PUSH_PROMISE
	f.Add(cat(rec(1, 0, 3, 1, 0, 0), rec(0, 0, 3, bytes.Repeat([]byte{1}, 200)...), rec(9, 0, 3, 1, 2)))
	f.Fuzz(func(t *testing.T, in []byte) {
		runFrames(t, in)
	})
}

func runFrames(t *testing.T, in []byte) {
	cli, srv := net.Pipe()
	var mu sync.Mutex
	var violation string
	var dialed atomic.Bool
	p := NewPool("fuzz", func(context.Context) (net.Conn, error) {
		if dialed.Swap(true) {
			return nil, errors.New("one connection only") // a replay after GOAWAY finds no other
		}
		return cli, nil
	},
		Options{StreamWindow: 1 << 10, MaxConns: 1, IdleTimeout: time.Minute, WriteTimeout: time.Second})
	p.afterFrame = func(c *clientConn) {
		c.mu.Lock()
		defer c.mu.Unlock()
		v := ""
		if c.recvWin+c.recvUnacked != connWindow {
			v = fmt.Sprintf("connection receive window %d + owed %d != %d", c.recvWin, c.recvUnacked, connWindow)
		}
		if c.active < 0 {
			v = fmt.Sprintf("active streams %d", c.active)
		}
		for id, s := range c.streams {
			if s.err != nil || s.remoteDone {
				continue
			}
			// Held: DATA in rbuf, and that of a chunked response not yet
			// framed into it (chunk, credited once framed and drained).
			held := s.bufData + int64(len(s.chunk))
			if s.recvWin+held+s.credit != int64(c.p.opt.StreamWindow) {
				v = fmt.Sprintf("stream %d: window %d + buffered %d (%d unframed) + owed %d != %d", id, s.recvWin, held, len(s.chunk), s.credit, c.p.opt.StreamWindow)
			}
			if s.recvWin < 0 || held > int64(c.p.opt.StreamWindow) {
				v = fmt.Sprintf("stream %d: window %d, buffered %d", id, s.recvWin, held)
			}
		}
		if v != "" {
			mu.Lock()
			violation = v
			mu.Unlock()
		}
	}

	// The fake backend: SETTINGS, then the fuzzed frames once both
	// requests' HEADERS arrived; everything else we send is drained.
	sawHeaders := make(chan struct{})
	go func() {
		var preface [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(srv, preface[:]); err != nil {
			return
		}
		fr := http2.NewFramer(io.Discard, srv)
		fr.SetMaxReadFrameSize(1<<24 - 1)
		seen := 0
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				io.Copy(io.Discard, srv) // keep draining
				return
			}
			if _, ok := f.(*http2.HeadersFrame); ok {
				if seen++; seen == 2 {
					close(sawHeaders)
				}
			}
		}
	}()
	go func() {
		defer srv.Close()
		w := http2.NewFramer(srv, nil)
		w.AllowIllegalWrites = true
		if w.WriteSettings() != nil {
			return
		}
		select {
		case <-sawHeaders:
		case <-time.After(5 * time.Second):
			return
		}
		writeFuzzFrames(w, in)
	}()

	get, _, err := p.Open(context.Background(), 5*time.Second)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	post, _, err := p.Open(context.Background(), 5*time.Second)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var wg sync.WaitGroup
	for _, st := range []*Stream{get, post} {
		st.SetDeadline(time.Now().Add(10 * time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(io.Discard, st)
		}()
	}
	get.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
	post.Write([]byte("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 70000\r\n\r\n"))
	wg.Add(1)
	go func() {
		defer wg.Done()
		post.Write(bytes.Repeat([]byte("b"), 70000)) // waits for window until the connection ends
	}()
	wg.Wait()
	get.Close()
	post.Close()
	c := get.cur.Load().c
	c.mu.Lock()
	cerr := c.err
	c.mu.Unlock()
	if cerr != nil && strings.Contains(cerr.Error(), "panic") {
		t.Fatalf("reader panicked: %v", cerr)
	}
	mu.Lock()
	defer mu.Unlock()
	if violation != "" {
		t.Fatal(violation)
	}
}

var fuzzStatuses = []string{"100", "200", "204", "304", "404", "101", "abc", "99"}

// writeFuzzFrames writes the frames in describes (see FuzzResponseFrames).
func writeFuzzFrames(w *http2.Framer, in []byte) {
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for len(in) >= 4 {
		kind, flags, sel, n := in[0], in[1], in[2], int(in[3])
		in = in[4:]
		if n > len(in) {
			n = len(in)
		}
		payload := in[:n]
		in = in[n:]
		id := [4]uint32{0, 1, 3, 5}[sel%4]
		at := func(i int) byte {
			if i < len(payload) {
				return payload[i]
			}
			return 0
		}
		var err error
		switch kind % 10 {
		case 0:
			if flags&8 != 0 {
				err = w.WriteDataPadded(id, flags&1 != 0, payload, make([]byte, at(0)%16))
			} else {
				err = w.WriteData(id, flags&1 != 0, payload)
			}
		case 1:
			hbuf.Reset()
			enc.WriteField(hpack.HeaderField{Name: ":status", Value: fuzzStatuses[at(0)%byte(len(fuzzStatuses))]})
			if cl := at(1); cl != 0 {
				enc.WriteField(hpack.HeaderField{Name: "content-length", Value: fmt.Sprint(cl - 1)})
			}
			if at(2)&1 != 0 {
				enc.WriteField(hpack.HeaderField{Name: "connection", Value: "close"})
			}
			if at(2)&2 != 0 {
				enc.WriteField(hpack.HeaderField{Name: "X-Upper", Value: "v"})
			}
			if at(2)&4 != 0 {
				enc.WriteField(hpack.HeaderField{Name: ":path", Value: "/"})
			}
			err = w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(),
				EndStream: flags&1 != 0, EndHeaders: flags&4 == 0})
		case 2:
			err = w.WriteRSTStream(id, http2.ErrCode(at(0)%14))
		case 3:
			var ss []http2.Setting
			for i := 0; i+4 < len(payload); i += 5 {
				ss = append(ss, http2.Setting{ID: http2.SettingID(payload[i] % 8), Val: binary.BigEndian.Uint32(payload[i+1:])})
			}
			err = w.WriteSettings(ss...)
		case 4:
			var d [8]byte
			copy(d[:], payload)
			err = w.WritePing(flags&1 != 0, d)
		case 5:
			err = w.WriteGoAway(uint32(at(0)%8), http2.ErrCode(at(1)%14), nil)
		case 6:
			inc := uint32(at(0))<<24 | uint32(at(1))<<16 | uint32(at(2))<<8 | uint32(at(3))
			err = w.WriteWindowUpdate(id, inc&(1<<31-1))
		case 7:
			err = w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: payload,
				EndStream: flags&1 != 0, EndHeaders: flags&4 != 0})
		case 8:
			err = w.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, BlockFragment: payload, EndHeaders: true})
		case 9:
			err = w.WriteContinuation(id, flags&4 != 0, payload)
		}
		if err != nil {
			return
		}
	}
}
