package proxy

import (
	"bytes"
	"crypto/tls"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// benchmarkH2 measures proxied HTTP/2 GETs over one real TLS connection
// (ALPN h2), inflight streams at a time, to a real keep-alive HTTP/1.1
// backend over loopback: the path `make bench`'s h2load row takes. The
// client is a raw framer reusing its frames and feeding the HPACK encoder
// constant strings, so that allocs/op is mostly the proxy's.
func benchmarkH2(b *testing.B, inflight int) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := fixedBackend(b, resp)
	conf := testTLSConfig(b, "bench.example.com")
	conf.NextProtos = []string{"h2", "http/1.1"}
	f := newFixture(b, anyHost("c"), map[string][]string{"c": {addr}}, func(l *Listener) { l.TLS = conf })
	tc, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: "bench.example.com", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		b.Fatal(err)
	}
	defer tc.Close()
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		b.Fatalf("ALPN selected %q", p)
	}
	fr := http2.NewFramer(tc, tc)
	fr.SetReuseFrames()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "bench.example.com"}, {Name: ":path", Value: "/"},
		{Name: "user-agent", Value: "h2load"}, {Name: "accept", Value: "*/*"}}
	// block encodes the request like a real client: literals the first
	// time, indices of the dynamic table afterwards.
	block := func() []byte {
		hb.Reset()
		for _, f := range fields {
			enc.WriteField(f)
		}
		return hb.Bytes()
	}
	if _, err := tc.Write([]byte(http2.ClientPreface)); err != nil {
		b.Fatal(err)
	}
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	fr.WriteWindowUpdate(0, 1<<30)
	next := uint32(1)
	send := func() {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: next, BlockFragment: block(), EndStream: true, EndHeaders: true}); err != nil {
			b.Fatal(err)
		}
		next += 2
	}
	// recv reads frames until one stream has ended with a 13-byte body.
	recv := func() {
		for {
			fr0, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			switch f := fr0.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.DataFrame:
				if f.StreamEnded() {
					return
				}
			case *http2.HeadersFrame:
				if f.StreamEnded() {
					b.Fatalf("stream %d: response without a body", f.StreamID)
				}
			case *http2.RSTStreamFrame:
				b.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
			case *http2.GoAwayFrame:
				b.Fatalf("GOAWAY %v", f.ErrCode)
			}
		}
	}
	send()
	recv()
	b.ReportAllocs()
	b.ResetTimer()
	sent, done := 0, 0
	for ; sent < inflight && sent < b.N; sent++ {
		send()
	}
	for done < b.N {
		recv()
		done++
		if sent < b.N {
			send()
			sent++
		}
	}
	b.StopTimer()
}

func BenchmarkProxyH2Sequential(b *testing.B) { benchmarkH2(b, 1) }
func BenchmarkProxyH2Inflight10(b *testing.B) { benchmarkH2(b, 10) }
