package accesslog

import "testing"

// BenchmarkEncode measures the encoding of one HTTP record per format: the
// CPU an access record adds to a request (shipping is batched).
func BenchmarkEncode(b *testing.B) {
	r := httpRecord()
	dst := make([]byte, 0, 4096)
	for _, f := range []Format{Ascii, Protobuf, JSON} {
		b.Run(f.String(), func(b *testing.B) {
			e := Encoder{Format: f, Tag: "WRK-00"}
			b.ReportAllocs()
			for b.Loop() {
				dst = e.Append(dst[:0], r)
			}
		})
	}
}
