package h2

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestPeerMaxFrameSizeHonoured: every frame we send fits the client's
// SETTINGS_MAX_FRAME_SIZE (RFC 9113 §4.2, §6.5.2), 16384 until it says
// otherwise: DATA frames are cut to it, and a response head or trailer
// section larger than it goes as HEADERS then CONTINUATION frames, none
// larger, END_HEADERS on the last only, END_STREAM on the HEADERS of the
// trailers, with no other frame between them (§6.10). A larger limit is
// used once the client grants it, and a limit lowered again is obeyed
// again.
func TestPeerMaxFrameSizeHonoured(t *testing.T) {
	big := bytes.Repeat([]byte("h"), 20000)
	body := bytes.Repeat([]byte("b"), 100000)
	h := HandlerFunc(func(s *Stream) {
		s.WriteHeader(200, []HeaderField{{Name: []byte("x-a"), Value: big}, {Name: []byte("x-b"), Value: big}})
		s.Write(body)
		s.WriteTrailers([]HeaderField{{Name: []byte("x-t"), Value: big}})
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	rc.fr.WriteWindowUpdate(0, 1<<30)
	for i, limit := range []uint32{16384, 1 << 20, 16384} {
		id := uint32(2*i + 1)
		if i > 0 {
			rc.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: limit})
			rc.waitFor("SETTINGS ACK", func(f http2.Frame) bool { s, ok := f.(*http2.SettingsFrame); return ok && s.IsAck() })
		}
		rc.get(id, true)
		var (
			inBlock  bool   // a header block is open: only its CONTINUATION may come
			block    []byte // the open block
			blocks   int
			data     int
			largest  uint32
			trailers bool
		)
		rc.waitFor("the response's end", func(f http2.Frame) bool {
			fh := f.Header()
			if fh.StreamID != id {
				if inBlock {
					t.Fatalf("max frame %d: %v inside a header block", limit, fh)
				}
				return false
			}
			largest = max(largest, fh.Length)
			if fh.Length > limit {
				t.Fatalf("max frame %d: %v larger than the client's limit", limit, fh)
			}
			switch f := f.(type) {
			case *http2.HeadersFrame:
				if inBlock {
					t.Fatalf("max frame %d: HEADERS inside a header block", limit)
				}
				block = append(block[:0], f.HeaderBlockFragment()...)
				inBlock = !f.HeadersEnded()
				trailers = blocks == 1
				if trailers != f.StreamEnded() {
					t.Fatalf("max frame %d: header block %d with END_STREAM %v", limit, blocks+1, f.StreamEnded())
				}
			case *http2.ContinuationFrame:
				if !inBlock {
					t.Fatalf("max frame %d: CONTINUATION outside a header block", limit)
				}
				block = append(block, f.HeaderBlockFragment()...)
				inBlock = !f.HeadersEnded()
			case *http2.DataFrame:
				if inBlock {
					t.Fatalf("max frame %d: DATA inside a header block", limit)
				}
				data += len(f.Data())
				return false
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				t.Fatalf("max frame %d: %v", limit, f)
			}
			if inBlock {
				return false
			}
			blocks++
			fields := decodeBlock(t, block)
			want := map[bool]int{false: 3, true: 1}[trailers] // :status, x-a, x-b; or x-t
			if len(fields) != want {
				t.Fatalf("max frame %d: block %d has %d fields, want %d", limit, blocks, len(fields), want)
			}
			for _, hf := range fields {
				if hf.Name != ":status" && hf.Value != string(big) {
					t.Fatalf("max frame %d: field %s of %d bytes", limit, hf.Name, len(hf.Value))
				}
			}
			return trailers
		})
		if data != len(body) {
			t.Fatalf("max frame %d: %d bytes of body, want %d", limit, data, len(body))
		}
		if limit > 16384 && largest <= 16384 {
			t.Errorf("max frame %d: largest frame %d: the larger limit was never used", limit, largest)
		}
	}
}

// TestExtendedConnectRefused: we do not advertise
// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3), so a request with the
// :protocol pseudo-header (a WebSocket over HTTP/2, §4) is malformed, a
// stream error PROTOCOL_ERROR that reaches no handler (RFC 9113 §8.1.1),
// and the connection carries on. The client's own
// SETTINGS_ENABLE_CONNECT_PROTOCOL, and SETTINGS_ENABLE_PUSH, with valid
// values are acknowledged and change nothing; another value is a
// connection error PROTOCOL_ERROR (RFC 8441 §3, RFC 9113 §6.5.2).
func TestExtendedConnectRefused(t *testing.T) {
	ran := make(chan string, 4)
	h := HandlerFunc(func(s *Stream) {
		ran <- string(s.Method())
		s.WriteResponse(200, nil, nil)
	})
	ts := startServer(t, Limits{}, h, nil, nil)

	rc := dialRaw(t, ts.addr)
	// Our SETTINGS, read again on a connection of its own.
	raw := dialRawSettings(t, ts.addr)
	if _, ok := raw[http2.SettingEnableConnectProtocol]; ok {
		t.Fatalf("server SETTINGS %v advertise SETTINGS_ENABLE_CONNECT_PROTOCOL", raw)
	}
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1}, http2.Setting{ID: http2.SettingEnablePush, Val: 1})
	rc.waitFor("SETTINGS ACK", func(f http2.Frame) bool { s, ok := f.(*http2.SettingsFrame); return ok && s.IsAck() })
	for i, kv := range [][]string{
		{":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/chat", ":authority", "localhost"},
		{":method", "GET", ":protocol", "websocket", ":scheme", "https", ":path", "/chat", ":authority", "localhost"},
	} {
		id := uint32(2*i + 1)
		rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: literalBlock(kv...)})
		rc.expectRST(id, http2.ErrCodeProtocol)
	}
	rc.get(5, true)
	if got := string(rc.responseBlock(5)); len(got) == 0 {
		t.Fatal("no response after the refused streams")
	}
	if m := <-ran; m != "GET" || len(ran) != 0 {
		t.Fatalf("handlers ran for %q and %d more, want the plain GET only", m, len(ran))
	}

	for _, st := range []http2.Setting{{ID: http2.SettingEnableConnectProtocol, Val: 2}, {ID: http2.SettingEnablePush, Val: 2}} {
		rc := dialRaw(t, ts.addr)
		rc.fr.WriteSettings(st)
		rc.expectGoAway(http2.ErrCodeProtocol)
		rc.nc.Close()
	}
}

// dialRawSettings connects and returns the parameters of the server's
// first SETTINGS frame.
func dialRawSettings(t *testing.T, addr string) map[http2.SettingID]uint32 {
	t.Helper()
	nc, _, sf := rawPreface(t, addr)
	defer nc.Close()
	m := map[http2.SettingID]uint32{}
	sf.ForeachSetting(func(s http2.Setting) error { m[s.ID] = s.Val; return nil })
	return m
}

// rawPreface dials addr, sends the client preface and an empty SETTINGS,
// and returns the connection (10 s deadline), its Framer and the server's
// first frame, which must be its SETTINGS.
func rawPreface(t *testing.T, addr string) (net.Conn, *http2.Framer, *http2.SettingsFrame) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fr := http2.NewFramer(nc, nc)
	io.WriteString(nc, http2.ClientPreface)
	fr.WriteSettings()
	f, err := fr.ReadFrame()
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		nc.Close()
		t.Fatalf("first server frame %v, want SETTINGS", f)
	}
	return nc, fr, sf
}
