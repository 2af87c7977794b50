package h2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// echoHandler answers with the request head and body; trailers on request
// (x-want-trailer) come back as response trailers.
var echoHandler = HandlerFunc(func(s *Stream) {
	sum := sha256.New()
	body, err := io.ReadAll(io.TeeReader(s, sum))
	if err != nil {
		return
	}
	fields := []HeaderField{
		{Name: []byte("X-Method"), Value: s.Method()},
		{Name: []byte("x-path"), Value: s.Path()},
		{Name: []byte("x-authority"), Value: s.Authority()},
		{Name: []byte("connection"), Value: []byte("close")}, // must be dropped
		{Name: []byte("x-body-sha256"), Value: fmt.Appendf(nil, "%x", sum.Sum(nil))},
	}
	for _, f := range s.Header() {
		if string(f.Name) == "x-echo" {
			fields = append(fields, HeaderField{Name: []byte("x-echo"), Value: f.Value})
		}
	}
	for _, f := range s.Trailer() {
		fields = append(fields, HeaderField{Name: append([]byte("x-trailer-"), f.Name...), Value: f.Value})
	}
	if err := s.WriteHeader(200, fields); err != nil {
		return
	}
	s.Write(body)
	if string(s.Path()) == "/trailers" {
		s.WriteTrailers([]HeaderField{{Name: []byte("x-done"), Value: []byte("yes")}})
		return
	}
	s.Close()
})

func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestH2CPriorKnowledge(t *testing.T) {
	ts := startServer(t, Limits{}, echoHandler, nil, nil)
	cl := h2cClient()
	req, _ := http.NewRequest("GET", "http://"+ts.addr+"/trailers", nil)
	req.Header.Set("X-Echo", "a b")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("proto %d status %d", resp.ProtoMajor, resp.StatusCode)
	}
	if len(body) != 0 {
		t.Fatalf("body %q", body)
	}
	for k, want := range map[string]string{"X-Method": "GET", "X-Path": "/trailers", "X-Authority": ts.addr, "X-Echo": "a b", "Connection": ""} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := resp.Trailer.Get("X-Done"); got != "yes" {
		t.Errorf("trailer X-Done = %q", got)
	}
}

func TestTLSALPNLargeBodiesConcurrent(t *testing.T) {
	cert, pool := testCert(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	ts := startServer(t, Limits{}, echoHandler, srvCfg, nil)
	cl := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}

	payload := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB: exceeds every window
	want := fmt.Sprintf("%x", sha256.Sum256(payload))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := payload
			if i%2 == 1 {
				body = payload[:1000*i]
			}
			req, _ := http.NewRequest("POST", "https://"+ts.addr+"/up", bytes.NewReader(body))
			resp, err := cl.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				errs <- err
				return
			}
			if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
				errs <- fmt.Errorf("not h2 over TLS: %+v", resp.TLS)
			}
			if !bytes.Equal(got, body) {
				errs <- fmt.Errorf("req %d: echoed %d bytes, want %d", i, len(got), len(body))
			}
			if i%2 == 0 && resp.Header.Get("X-Body-Sha256") != want {
				errs <- fmt.Errorf("sha mismatch")
			}
		}()
	}
	wg.Wait()
	ts.drainErrs()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ts.stats.Streams.Load(); n != 20 {
		t.Errorf("streams served = %d, want 20", n)
	}
}

func TestHandlerPanicResetsOnlyItsStream(t *testing.T) {
	h := HandlerFunc(func(s *Stream) {
		if string(s.Path()) == "/panic" {
			panic("boom")
		}
		helloHandler(s)
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	cl := h2cClient()
	if _, err := cl.Get("http://" + ts.addr + "/panic"); err == nil || !strings.Contains(err.Error(), "INTERNAL_ERROR") {
		t.Fatalf("panic request: err = %v, want stream INTERNAL_ERROR", err)
	}
	resp, err := cl.Get("http://" + ts.addr + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello 0" {
		t.Fatalf("body %q", b)
	}
	if n := ts.stats.HandlerPanics.Load(); n != 1 {
		t.Fatalf("HandlerPanics = %d", n)
	}
	if n := ts.stats.Conns.Load(); n != 1 {
		t.Fatalf("conns = %d, want the connection to survive", n)
	}
}

func (ts *testServer) drainErrs() {
	for {
		select {
		case err := <-ts.errs:
			if err != nil {
				ts.t.Logf("serve: %v", err)
			}
		default:
			return
		}
	}
}

// TestTrailersForStreamClosedMidBlock: a header block that began while its
// stream was open (trailers) and ends after the stream closed (its handler
// answered and returned meanwhile) is for a closed stream: a connection
// error STREAM_CLOSED (RFC 9113 §5.1), never a second request on the same
// stream id. This was a race h2spec 5.1/6 hit now and then.
func TestTrailersForStreamClosedMidBlock(t *testing.T) {
	gate := make(chan struct{})
	var handled atomic.Int64
	h := HandlerFunc(func(s *Stream) {
		handled.Add(1)
		<-gate
		s.WriteResponse(200, nil, []byte("ok"))
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	c := <-ts.newc
	rc.get(1, true)
	// A second head on stream 1 (h2spec sends the same request again),
	// the block left open while the stream is.
	rc.wmu.Lock()
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.headerBlock(getReq...), EndStream: true})
	rc.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	close(gate)
	rc.waitFor("the response", func(f http2.Frame) bool {
		return f.Header().StreamID == 1 && f.Header().Type == http2.FrameData && f.Header().Flags.Has(http2.FlagDataEndStream)
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c.mu.Lock()
		gone := c.streams[1] == nil
		c.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stream 1 still open after its response")
		}
		runtime.Gosched()
	}
	rc.wmu.Lock()
	err = rc.fr.WriteContinuation(1, true, nil)
	rc.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	rc.expectGoAway(http2.ErrCodeStreamClosed)
	if n := handled.Load(); n != 1 {
		t.Errorf("%d handlers ran for stream 1, want 1", n)
	}
}
