package accesslog

import (
	"net/netip"
	"testing"
)

// BenchmarkEncode measures the encoding of one HTTP record per format: the
// CPU an access record adds to a request (shipping is batched). "pan" is
// the record of the tests (two PANs to mask, an IPv6 backend), "plain" a
// common one, "wrk" the bench row's.
func BenchmarkEncode(b *testing.B) {
	plain := httpRecord()
	plain.Target, plain.UserAgent = []byte("/shop/cart?item=12&qty=1"), []byte("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	plain.Backend = netip.MustParseAddrPort("10.0.0.12:8080")
	wrk := httpRecord() // what the bench row's wrk sends: no query, no user agent, no tags
	wrk.Protocol, wrk.Target, wrk.UserAgent, wrk.Host, wrk.Tags = HTTP, []byte("/"), nil, []byte("127.0.0.1:18281"), nil
	wrk.Backend = netip.MustParseAddrPort("127.0.0.1:18280")
	dst := make([]byte, 0, 4096)
	for _, c := range []struct {
		name string
		f    Format
		r    *Record
	}{{"ascii/pan", Ascii, httpRecord()}, {"protobuf/pan", Protobuf, httpRecord()}, {"json/pan", JSON, httpRecord()},
		{"ascii/plain", Ascii, plain}, {"json/plain", JSON, plain}, {"json/wrk", JSON, wrk}} {
		f, r := c.f, c.r
		b.Run(c.name, func(b *testing.B) {
			e := Encoder{Format: f, Tag: "WRK-00"}
			b.ReportAllocs()
			for b.Loop() {
				dst = e.Append(dst[:0], r)
			}
		})
	}
}
