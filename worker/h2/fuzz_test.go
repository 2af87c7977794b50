package h2

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// memConn is a net.Conn reading from a fixed input and recording output.
type memConn struct {
	r   io.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error) { return m.r.Read(p) }
func (m *memConn) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.Write(p)
}
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

func seedFrames(f func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer)) []byte {
	var b, hb bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.AllowIllegalWrites = true
	f(fr, hpack.NewEncoder(&hb), &hb)
	return b.Bytes()
}

// FuzzConn feeds arbitrary bytes after the preface and a SETTINGS frame.
// Invariants: Serve returns, no panic is recovered, and everything the
// server wrote parses as a sequence of well-formed frames, starting with
// SETTINGS.
func FuzzConn(f *testing.F) {
	get := func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		for i := 0; i < len(getReq); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: getReq[i], Value: getReq[i+1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
		fr.WriteData(1, false, []byte("body"))
		fr.WriteWindowUpdate(1, 10)
		fr.WriteData(1, true, nil)
		fr.WritePing(false, [8]byte{1})
		fr.WriteRSTStream(1, http2.ErrCodeCancel)
	}
	f.Add(seedFrames(get))
	f.Add(seedFrames(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		enc.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes()})
		fr.WriteContinuation(3, true, []byte{0x84, 0x86, 0x41, 0x01, 'x'})
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
		fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	}))
	f.Add([]byte{0, 0, 0, 0xff, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var stats Stats
		pre := []byte(http2.ClientPreface)
		pre = append(pre, seedFrames(func(fr *http2.Framer, _ *hpack.Encoder, _ *bytes.Buffer) { fr.WriteSettings() })...)
		mc := &memConn{r: io.MultiReader(bytes.NewReader(pre), bytes.NewReader(in))}
		c := NewConn(mc, Limits{}, echoHandler, &Options{Stats: &stats})
		err := c.Serve()
		var ce *ConnError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("Serve = %v", err)
		}
		if n := stats.ConnPanics.Load() + stats.HandlerPanics.Load(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
		mc.mu.Lock()
		out := append([]byte(nil), mc.out.Bytes()...)
		mc.mu.Unlock()
		fr := http2.NewFramer(nil, bytes.NewReader(out))
		fr.SetMaxReadFrameSize(1 << 24)
		for i := 0; ; i++ {
			fr2, err := fr.ReadFrame()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("server output frame %d malformed: %v", i, err)
			}
			if _, ok := fr2.(*http2.SettingsFrame); i == 0 && !ok {
				t.Fatalf("first server frame %T", fr2)
			}
		}
	})
}
