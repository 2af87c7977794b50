package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/metrics"
)

// keepAliveClient is a client connection to f sending req and reading
// each response to its end (the 13-byte body "hello world!\n"), without
// allocating.
func keepAliveClient(t *testing.T, f *fixture, req []byte) func() {
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	return roundTripper(t, c, req)
}

// roundTripper returns a round trip of req on c, reading the response to
// its end (the 13-byte body "hello world!\n") without allocating; c is
// closed when the test ends.
func roundTripper(t *testing.T, c net.Conn, req []byte) func() {
	t.Cleanup(func() { c.Close() })
	buf := make([]byte, 4096)
	return func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for !bytes.HasSuffix(buf[:n], []byte("hello world!\n")) {
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
		}
	}
}

var (
	helloResp = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello world!\n")
	helloReq  = []byte("GET / HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
)

// TestKeepAliveRoundTripAllocs: a proxied GET on keep-alive connections at
// both ends, answered at once by its backend, with the worker's metrics
// recorded (the fast path of the benchmarks), allocates nothing: the
// response head is read through the backend connection's own raw
// connection (backends.Conn.RawConn), made once for its life, not one per
// response; the watch over clients that leave (watch.go) adds nothing.
// The client and backend here allocate nothing either.
func TestKeepAliveRoundTripAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {fixedBackend(t, helloResp)}}, nil, Options{Metrics: metrics.New()})
	roundTrip := keepAliveClient(t, f, helloReq)
	for range 50 {
		roundTrip() // pools, buffers, the backend connection
	}
	if n := testing.AllocsPerRun(500, roundTrip); n > 0 {
		t.Fatalf("%.2f allocations per proxied request, want none", n)
	}
}

// TestKeepAliveTLSRoundTripAllocs: the same over TLS 1.3 allocates
// crypto/tls's own only: one per record read from the socket
// (readFromUntil's reader), the client's and the proxy's, 2 in all. The
// proxy's wait for the next request (waitTLS) asks crypto/tls for a
// record only when it may hold one: an attempt that found the socket
// empty was one allocation more per request.
func TestKeepAliveTLSRoundTripAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	conf := testTLSConfig(t, "bench.example.com")
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {fixedBackend(t, helloResp)}},
		func(l *Listener) { l.TLS = conf }, Options{Metrics: metrics.New()})
	c, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "bench.example.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := roundTripper(t, c, helloReq)
	for range 50 {
		roundTrip()
	}
	if n := testing.AllocsPerRun(500, roundTrip); n > 2 {
		t.Fatalf("%.2f allocations per proxied request over TLS, want 2 (crypto/tls's, one per side)", n)
	}
}

// TestPromptExchangesNotChecked: the watch peeks at no client whose
// exchanges end promptly, however long its connection lives: a backend
// that answers at once costs no system call more.
func TestPromptExchangesNotChecked(t *testing.T) {
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {fixedBackend(t, helloResp)}}, nil)
	a, b := keepAliveClient(t, f, helloReq), keepAliveClient(t, f, helloReq)
	before := clientChecks.Load()
	for end := time.Now().Add(3 * watchEvery); time.Now().Before(end); {
		a()
		b()
		time.Sleep(time.Millisecond) // a light load, over several rounds of the watch
	}
	if n := clientChecks.Load() - before; n != 0 {
		t.Fatalf("%d client checks of prompt exchanges, want none", n)
	}
}
