package proxy

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2BackTimeoutBeforeIdleReap: with the stream idle timeout left to
// its default, back_timeout floored at 30 s (here both 1 s), streams
// awaiting a backend that never answers are answered 504 by the backend
// timeout, as HTTP/1.1 requests are, every one of them: the reaper, due
// at the same instant, leaves a stream whose request is complete and whose
// response has not begun to the session's own timeouts. It reset most of
// 50 such streams with CANCEL before.
func TestH2BackTimeoutBeforeIdleReap(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // never answers
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.TLS = conf
		l.BackTimeout = time.Second
		l.H2.StreamIdleTimeout = time.Second
		l.H2.StreamIdleSparesAwaiting = true
	})
	const n = 50
	fr := dialH2Raw(t, f.addr, "a.test", 20*time.Second, 65535)
	for i := range n {
		writeH2Get(fr, uint32(2*i+1), "a.test", "/hang")
	}
	dec := hpack.NewDecoder(4096, nil)
	done := map[uint32]string{}
	for len(done) < n {
		fr2, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d streams ended: %v", len(done), err)
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
			if _, ok := done[fr2.StreamID]; !ok {
				done[fr2.StreamID] = fields[0].Value
			}
		case *http2.RSTStreamFrame:
			if _, ok := done[fr2.StreamID]; !ok {
				done[fr2.StreamID] = fr2.ErrCode.String()
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", fr2.ErrCode)
		}
	}
	for id, got := range done {
		if got != "504" {
			t.Errorf("stream %d: %s, want 504", id, got)
		}
	}
}
