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

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/accesslog/accesslogtest"
)

// slowBackend answers /fast at once and holds any other request until the
// proxy gives it up (its connection closed) or 20 s pass, counting the
// requests it holds and those it saw cancelled.
type slowBackend struct {
	*httpBackend
	held, cancelled atomic.Int32
}

func newSlowBackend(t *testing.T) *slowBackend {
	sb := &slowBackend{}
	sb.httpBackend = newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			w.Write([]byte("ok"))
			return
		}
		sb.held.Add(1)
		select {
		case <-r.Context().Done():
			sb.cancelled.Add(1)
		case <-time.After(20 * time.Second):
		}
	})
	return sb
}

// h2Fixture is a proxy with an HTTPS listener offering only h2, for
// a.test, in front of b.
func h2OnlyFixture(t *testing.T, b string) *fixture {
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	return newFixture(t, anyHost("c"), map[string][]string{"c": {b}}, func(l *Listener) { l.TLS = conf })
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

// block is the header block of the pseudo-headers of a GET of path
// (:scheme https, :authority a.test), then fields (name, value, …); any
// pseudo-header in fields replaces the default.
func (h *h2Conn) block(path string, fields ...string) []byte {
	all := map[string]string{":method": "GET", ":scheme": "https", ":authority": "a.test", ":path": path}
	for i := 0; i+1 < len(fields); i += 2 {
		if _, ok := all[fields[i]]; ok {
			all[fields[i]] = fields[i+1]
		}
	}
	h.hb.Reset()
	for _, name := range []string{":method", ":scheme", ":authority", ":path"} {
		h.enc.WriteField(hpack.HeaderField{Name: name, Value: all[name]})
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i][0] != ':' {
			h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
	}
	return bytes.Clone(h.hb.Bytes())
}

// get sends a GET of path on stream id, fields as for block.
func (h *h2Conn) get(id uint32, path string, fields ...string) {
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(path, fields...), EndHeaders: true, EndStream: true})
}

// TestH2ResetCancelsBackendWork: a stream the client resets, or whose
// connection it closes, while the backend works on its request, closes
// the backend connection at once (the backend sees its request
// cancelled), instead of holding it until the backend answers: a reset
// stream costs no more than it took so far (rapid reset, MadeYouReset).
func TestH2ResetCancelsBackendWork(t *testing.T) {
	b := newSlowBackend(t)
	f := h2OnlyFixture(t, b.addr)
	for i, how := range []string{"rst", "close"} {
		t.Run(how, func(t *testing.T) {
			h := dialH2(t, f)
			h.get(1, "/slow")
			waitFor(t, "the request at the backend", func() bool { return b.held.Load() == int32(i+1) })
			if how == "rst" {
				h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
			} else {
				h.c.Close()
			}
			waitFor(t, "the backend's request cancelled", func() bool { return b.cancelled.Load() == int32(i+1) })
		})
	}
}

// TestH2EarlyResetNeverWorks: streams reset in the same read as their
// HEADERS (before their session exists) cost the backend nothing that
// outlives them: every stream handler ends at once, and a request that
// did reach the backend is cancelled there.
func TestH2EarlyResetNeverWorks(t *testing.T) {
	b := newSlowBackend(t)
	f := h2OnlyFixture(t, b.addr)
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
	waitFor(t, "every request that reached the backend cancelled", func() bool { return b.held.Load() == b.cancelled.Load() })
}

// TestH2ResetNotReplayed: a stream reset while its request waits on a
// pooled (reused) backend connection is sent to the backend once. Two
// things keep it so: the read that abort's close interrupts is an error,
// not the "nothing came" of a connection the backend closed (which is
// replayed), and an aborted session tries no backend again; the test
// fails only when both give way.
func TestH2ResetNotReplayed(t *testing.T) {
	b := newSlowBackend(t)
	f := h2OnlyFixture(t, b.addr)
	h := dialH2(t, f)
	h.get(1, "/fast")
	for done := false; !done; {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		done = fr.Header().StreamID == 1 && fr.Header().Flags.Has(http2.FlagDataEndStream) && (fr.Header().Type == http2.FrameData || fr.Header().Type == http2.FrameHeaders)
	}
	waitFor(t, "the backend connection pooled", func() bool { return f.srv.H2Stats.ActiveStreams.Load() == 0 })
	h.get(3, "/slow")
	waitFor(t, "the slow request at the backend", func() bool { return b.held.Load() == 1 })
	h.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	waitFor(t, "the slow request cancelled and its handler done", func() bool {
		return b.cancelled.Load() == 1 && f.srv.H2Stats.ActiveStreams.Load() == 0
	})
	if n := b.held.Load(); n != 1 {
		t.Errorf("the reset stream's request reached the backend %d times", n)
	}
}

// TestH2UploadResetRecord: a stream its client resets in the middle of
// its request body, while the backend holds the request, is recorded as
// a stream the client reset (not as a client that closed its
// connection, the HTTP/1.1 reason the exchange notes first), with no
// status.
func TestH2UploadResetRecord(t *testing.T) {
	b := newSlowBackend(t)
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Access: al})
	h := dialH2(t, f)
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
		BlockFragment: h.block("/upload", ":method", "POST", "content-length", "100")})
	h.fr.WriteData(1, false, bytes.Repeat([]byte("x"), 10))
	waitFor(t, "the request at the backend", func() bool { return b.held.Load() == 1 })
	h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	r := sink.JSON(t, 1)[0]
	if reason := get(r, "event.reason"); reason != "client reset its stream before the end of the response" || get(r, "http.response.status_code") != nil {
		t.Errorf("record of a stream reset mid-upload: reason %q, status %v: %v", reason, get(r, "http.response.status_code"), r)
	}
}
