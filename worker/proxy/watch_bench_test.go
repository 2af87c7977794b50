package proxy

import (
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
)

// BenchmarkWatchPick measures one round of the watch's walk (pickOld)
// over 100 000 client connections, 1 % of them in an exchange older than
// watchEvery: the time the server's lock, which every accept and every
// close takes, is held each watchEvery.
func BenchmarkWatchPick(b *testing.B) {
	const n = 100_000
	s := &Server{sessions: make(map[*session]struct{}, n)}
	now := time.Now()
	old := watchStamp(now.Add(-2 * watchEvery))
	bc := &backends.Conn{}
	for i := range n {
		ss := &session{}
		s.sessions[ss] = struct{}{}
		ss.slot = s.takeSlot(ss)
		if i%100 == 0 {
			ss.watchFrom(old)
			ss.bc.Store(bc)
		}
	}
	var picked []watched
	stamp := watchStamp(now)
	b.ReportAllocs()
	for b.Loop() {
		picked, _ = s.pickOld(picked[:0], stamp)
	}
	if len(picked) != n/100 {
		b.Fatalf("picked %d, want %d", len(picked), n/100)
	}
}
