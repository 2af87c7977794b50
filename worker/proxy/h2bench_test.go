package proxy

import (
	"bytes"
	"crypto/tls"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Loop is a raw HTTP/2 client on one real TLS connection (ALPN h2) to
// an HTTPS listener whose every request goes to a real keep-alive
// HTTP/1.1 backend answering 13 bytes: the path `make bench`'s h2load row
// takes. It reuses its frames and feeds the HPACK encoder constant strings,
// so that allocations counted over a run are mostly the proxy's.
type h2Loop struct {
	tb     testing.TB
	fr     *http2.Framer
	hb     bytes.Buffer
	enc    *hpack.Encoder
	fields []hpack.HeaderField
	next   uint32
}

func newH2Loop(tb testing.TB) *h2Loop {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := fixedBackend(tb, resp)
	conf := testTLSConfig(tb, "bench.example.com")
	conf.NextProtos = []string{"h2", "http/1.1"}
	f := newFixture(tb, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) { l.TLS = conf })
	tc, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "bench.example.com", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tc.Close() })
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tb.Fatalf("ALPN selected %q", p)
	}
	l := &h2Loop{tb: tb, fr: http2.NewFramer(tc, tc), next: 1}
	l.fr.SetReuseFrames()
	l.enc = hpack.NewEncoder(&l.hb)
	l.fields = []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "bench.example.com"}, {Name: ":path", Value: "/"},
		{Name: "user-agent", Value: "h2load"}, {Name: "accept", Value: "*/*"}}
	if _, err := tc.Write([]byte(http2.ClientPreface)); err != nil {
		tb.Fatal(err)
	}
	l.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	l.fr.WriteWindowUpdate(0, 1<<30)
	l.send()
	l.recv()
	return l
}

// send starts a GET, encoded like a real client's: literals the first
// time, indices of the dynamic table afterwards.
func (l *h2Loop) send() {
	l.hb.Reset()
	for _, f := range l.fields {
		l.enc.WriteField(f)
	}
	if err := l.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: l.next, BlockFragment: l.hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		l.tb.Fatal(err)
	}
	l.next += 2
}

// recv reads frames until a stream has ended with its body.
func (l *h2Loop) recv() {
	for {
		fr0, err := l.fr.ReadFrame()
		if err != nil {
			l.tb.Fatal(err)
		}
		switch f := fr0.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				l.fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				return
			}
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				l.tb.Fatalf("stream %d: response without a body", f.StreamID)
			}
		case *http2.RSTStreamFrame:
			l.tb.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			l.tb.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
}

// benchmarkH2 runs b.N proxied GETs, inflight streams at a time. Besides
// ns/op (wall time, noisy on a shared machine) it reports cpu-ns/op: the
// process's user and system CPU time per request, client and backend
// included.
func benchmarkH2(b *testing.B, inflight int) {
	l := newH2Loop(b)
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	sent, done := 0, 0
	for ; sent < inflight && sent < b.N; sent++ {
		l.send()
	}
	for done < b.N {
		l.recv()
		done++
		if sent < b.N {
			l.send()
			sent++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU returns the process's user plus system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkProxyH2Sequential(b *testing.B) { benchmarkH2(b, 1) }
func BenchmarkProxyH2Inflight10(b *testing.B) { benchmarkH2(b, 10) }

// TestH2StreamAllocs bounds the allocations of one proxied HTTP/2 request,
// the whole process counted (client and TLS included): a stream is served
// by pooled parts (session, stream connection, handler goroutine, h2
// stream), not by a pipe and goroutines of its own. The bridge over
// net.Pipe cost about 30.
func TestH2StreamAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled objects at random")
	}
	l := newH2Loop(t)
	const budget = 10
	got := testing.AllocsPerRun(300, func() {
		l.send()
		l.recv()
	})
	if got > budget {
		t.Fatalf("%.1f allocations per proxied HTTP/2 request, budget %d", got, budget)
	}
	t.Logf("%.1f allocations per request", got)
}

// TestH2StreamGoroutines checks that proxied HTTP/2 requests start no
// goroutine each: a stream's handler runs on a pooled goroutine that keeps
// its grown stack, and the session runs in it. The bridge over net.Pipe
// started four per stream (handler, session, watcher, reader).
func TestH2StreamGoroutines(t *testing.T) {
	l := newH2Loop(t)
	sample := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	created := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	const n = 200
	before := created()
	for range n {
		l.send()
		l.recv()
	}
	if got := created() - before; got > n/10 {
		t.Fatalf("%d goroutines started for %d sequential requests", got, n)
	}
}
