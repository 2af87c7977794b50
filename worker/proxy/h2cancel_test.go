package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
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
