package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2ResetCancelsBackendWork: a stream the client resets, or whose
// connection it closes, while the backend works on its request, closes
// the backend connection at once (the backend sees its request
// cancelled), instead of holding it until the backend answers: a reset
// stream costs no more than it took so far (rapid reset, MadeYouReset).
func TestH2ResetCancelsBackendWork(t *testing.T) {
	got := make(chan string, 16)
	cancelled := make(chan string, 16)
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
		select {
		case <-r.Context().Done():
			cancelled <- r.URL.Path
		case <-time.After(20 * time.Second):
		}
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	for _, how := range []string{"rst", "close"} {
		t.Run(how, func(t *testing.T) {
			c, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, http2.ClientPreface)
			fr := http2.NewFramer(c, c)
			fr.WriteSettings()
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			path := "/slow-" + how
			for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", path}} {
				enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
			}
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
			select {
			case p := <-got:
				if p != path {
					t.Fatalf("backend got %s, want %s", p, path)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the request did not reach the backend")
			}
			if how == "rst" {
				fr.WriteRSTStream(1, http2.ErrCodeCancel)
			} else {
				c.Close()
			}
			select {
			case p := <-cancelled:
				if p != path {
					t.Fatalf("backend saw %s cancelled, want %s", p, path)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the backend kept working on a request whose stream is gone")
			}
		})
	}
}

// h2Conn is a raw HTTP/2 client connection to f's TLS listener.
type h2Conn struct {
	c   *tls.Conn
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func dialH2(t *testing.T, f *fixture) *h2Conn {
	t.Helper()
	c, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	h := &h2Conn{c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.hb)
	io.WriteString(c, http2.ClientPreface)
	h.fr.WriteSettings()
	return h
}

// block is the header block of a GET of path.
func (h *h2Conn) block(path string) []byte {
	h.hb.Reset()
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", path}} {
		h.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	return bytes.Clone(h.hb.Bytes())
}

// TestH2EarlyResetNeverWorks: streams reset in the same read as their
// HEADERS (before their session exists) cost the backend nothing that
// outlives them: every stream handler ends at once, and a request that
// did reach the backend is cancelled there.
func TestH2EarlyResetNeverWorks(t *testing.T) {
	var reached, cancelled atomic.Int32
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		select {
		case <-r.Context().Done():
			cancelled.Add(1)
		case <-time.After(20 * time.Second):
		}
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	h := dialH2(t, f)
	var out bytes.Buffer
	w := http2.NewFramer(&out, nil)
	for id := uint32(1); id < 40; id += 2 {
		w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block("/x"), EndHeaders: true, EndStream: true})
		w.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	h.c.Write(out.Bytes()) // one write: the resets come with their requests
	waitFor(t, "the reset streams' handlers end", func() bool {
		return f.srv.H2Stats.Streams.Load() == 20 && f.srv.H2Stats.ActiveStreams.Load() == 0
	})
	waitFor(t, "every request that reached the backend cancelled", func() bool { return reached.Load() == cancelled.Load() })
}

// TestH2ResetNotReplayed: a stream reset while its request waits on a
// pooled (reused) backend connection is not sent again on a new one (the
// replay of a request whose reused connection ended is for connections
// the backend closed, not for the ones a reset closed).
func TestH2ResetNotReplayed(t *testing.T) {
	var slow, cancelled atomic.Int32
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			w.Write([]byte("ok"))
			return
		}
		slow.Add(1)
		select {
		case <-r.Context().Done():
			cancelled.Add(1)
		case <-time.After(20 * time.Second):
		}
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	h := dialH2(t, f)
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("/fast"), EndHeaders: true, EndStream: true})
	for done := false; !done; {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		done = fr.Header().StreamID == 1 && fr.Header().Flags.Has(http2.FlagDataEndStream) && (fr.Header().Type == http2.FrameData || fr.Header().Type == http2.FrameHeaders)
	}
	waitFor(t, "the backend connection pooled", func() bool { return f.srv.H2Stats.ActiveStreams.Load() == 0 })
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: h.block("/slow"), EndHeaders: true, EndStream: true})
	waitFor(t, "the slow request at the backend", func() bool { return slow.Load() == 1 })
	h.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	waitFor(t, "the slow request cancelled and its handler done", func() bool {
		return cancelled.Load() == 1 && f.srv.H2Stats.ActiveStreams.Load() == 0
	})
	if n := slow.Load(); n != 1 {
		t.Errorf("the reset stream's request reached the backend %d times", n)
	}
}
