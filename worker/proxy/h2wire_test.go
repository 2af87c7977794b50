package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/accesslog/accesslogtest"
	"github.com/sozu-go/sozu/worker/metrics"
)

// TestH2StreamBytesAsOnTheWire: an HTTP/2 request's bytes in and out, in
// its access record and in bytes_in and bytes_out, are what its frames
// took on the connection (HEADERS with its HPACK-compressed block, DATA
// with its padding, each frame's header), as an HTTP/1.1 request's are
// the bytes it sent and got. They were those of its HTTP/1.1 form: a head
// written out in full, a transfer-encoding field and chunk framing that
// no client sent (a body without content-length), and no frame headers.
func TestH2StreamBytesAsOnTheWire(t *testing.T) {
	body := strings.Repeat("r", 5000)
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, body[:1000])
		w.(http.Flusher).Flush() // a chunked response
		io.WriteString(w, body[1000:])
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	reg := metrics.New()
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Access: al, Metrics: reg})
	h := dialH2(t, f)

	// A POST without content-length: the HTTP/1.1 form is chunked.
	var sent int64
	block := h.block("/upload", ":method", "POST", "user-agent", "wire/1")
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true})
	sent += 9 + int64(len(block))
	h.fr.WriteData(1, false, []byte(strings.Repeat("q", 1200)))
	sent += 9 + 1200
	h.fr.WriteDataPadded(1, true, []byte(strings.Repeat("q", 800)), make([]byte, 40))
	sent += 9 + 1 + 800 + 40

	var got int64
	status := ""
	for done := false; !done; {
		fr, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		if fr.Header().StreamID != 1 {
			continue
		}
		switch fr := fr.(type) {
		case *http2.HeadersFrame:
			got += 9 + int64(fr.Length)
			status = string(fr.HeaderBlockFragment())
			done = fr.StreamEnded()
		case *http2.ContinuationFrame:
			got += 9 + int64(fr.Length)
		case *http2.DataFrame:
			got += 9 + int64(fr.Length)
			done = fr.StreamEnded()
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset: %v", fr.ErrCode)
		}
	}
	if status == "" {
		t.Fatal("no response head")
	}
	rec := sink.JSON(t, 1)[0]
	if code := get(rec, "http.response.status_code"); code != float64(200) {
		t.Fatalf("status %v", code)
	}
	in, _ := get(rec, "http.request.bytes").(float64)
	out, _ := get(rec, "http.response.bytes").(float64)
	if int64(in) != sent || int64(out) != got {
		t.Errorf("record: bytes in %v, out %v; the stream's frames were %d bytes in, %d out", in, out, sent, got)
	}
	waitFor(t, "the request recorded", func() bool {
		return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 1
	})
	p := reg.Snapshot().GetProxy()
	if p[pm.BytesIn].GetCount() != sent || p[pm.BytesOut].GetCount() != got {
		t.Errorf("bytes_in %d, bytes_out %d; the stream's frames were %d bytes in, %d out", p[pm.BytesIn].GetCount(), p[pm.BytesOut].GetCount(), sent, got)
	}
}
