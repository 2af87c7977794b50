package memtrim

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var sink [][]byte

// start runs a fast Trimmer until the test ends.
func start(t *testing.T) *Trimmer {
	tr := &Trimmer{Interval: 5 * time.Millisecond, Quiet: 25 * time.Millisecond, MinReclaim: 1 << 20}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return tr
}

// TestTrim: a burst of garbage in a process that then goes quiet is
// collected and its memory returned within a few intervals, once; while
// collections keep running (a busy process), nothing is forced.
func TestTrim(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // only the trimmer's collections
	runtime.GC()

	t.Run("quiet after a burst", func(t *testing.T) {
		runtime.GC()
		for range 512 {
			sink = append(sink, make([]byte, 64<<10)) // 32 MiB, allocated since that collection
		}
		sink = nil
		// Started after the burst: a trim during it (a slow one, on a
		// loaded machine) would see the burst live and take the
		// runtime's count of it (bytes allocated since the last
		// collection) away.
		tr := start(t)
		waitFor(t, "a trim", func() bool { return tr.Trims.Load() > 0 })
		var h heap
		if r := h.read().reclaimable(); r > 4<<20 {
			t.Errorf("%d KiB of garbage or free memory still resident after the trim of 32 MiB of garbage", r>>10)
		}
		// Quiet and nothing new to reclaim: no other collection.
		trims, looks := tr.Trims.Load(), tr.looks.Load()
		waitFor(t, "20 more looks", func() bool { return tr.looks.Load() >= looks+20 })
		if n := tr.Trims.Load(); n != trims {
			t.Errorf("%d more trims with nothing to reclaim, want 0", n-trims)
		}
	})

	t.Run("busy", func(t *testing.T) {
		tr := start(t)
		looks := tr.looks.Load()
		for tr.looks.Load() < looks+20 {
			for range 64 {
				sink = append(sink, make([]byte, 64<<10))
			}
			sink = nil
			runtime.GC() // the process collects on its own
		}
		if n := tr.Trims.Load(); n != 0 {
			t.Errorf("%d trims while collections ran, want 0", n)
		}
	})
}
