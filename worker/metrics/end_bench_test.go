package metrics

import (
	"testing"
	"time"
)

// BenchmarkEnd measures the recording of one proxied request (End): the
// CPU the metrics add to a request.
func BenchmarkEnd(b *testing.B) {
	r := New()
	c := r.Cluster("c")
	q := Request{Status: 200, Parsed: true, Cluster: c, Backend: c.Backend("c-0"), BytesIn: 80, BytesOut: 200}
	now := time.Now()
	q.Start, q.BackendSent = now.Add(-300*time.Microsecond), 50*time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		r.End(&q, now)
	}
}
