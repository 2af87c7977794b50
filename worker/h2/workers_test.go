package h2

import (
	"sync/atomic"
	"testing"
)

func idleWorkers() int {
	idle.mu.Lock()
	defer idle.mu.Unlock()
	return len(idle.stack)
}

// TestWorkerPool: handlers run on pooled goroutines. A burst of streams
// starts as many workers as run at once; the next burst reuses them; two
// reaper rounds without work end them all.
func TestWorkerPool(t *testing.T) {
	const burst = 8
	var running atomic.Int64
	release := make(chan struct{})
	h := HandlerFunc(func(s *Stream) {
		running.Add(1)
		<-release
		running.Add(-1)
		s.WriteHeader(200, nil)
		s.Close()
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	rc := dialRaw(t, ts.addr)
	// End the workers earlier tests left waiting (TestH2Spec leaves
	// dozens), so that the counts below are this test's.
	for range 3 {
		reapRound()
	}
	id := uint32(1)
	run := func() {
		t.Helper()
		for range burst {
			rc.get(id, true)
			id += 2
		}
		waitCond(t, "the burst's handlers running", func() bool { return running.Load() == burst })
		for range burst {
			release <- struct{}{}
		}
		waitCond(t, "the burst's workers idle", func() bool { return idleWorkers() == burst })
	}
	// Workers of earlier tests' handlers may still come to wait: the counts
	// allow for them.
	started, ended := workersStarted.Load(), workersEnded.Load()
	run()
	if n := workersStarted.Load() - started; n > burst {
		t.Fatalf("first burst started %d workers, want at most %d", n, burst)
	}
	started = workersStarted.Load()
	run()
	if n := workersStarted.Load() - started; n != 0 {
		t.Fatalf("second burst started %d workers, want none (%d were idle)", n, burst)
	}
	idle.mu.Lock()
	r0 := idle.round
	idle.mu.Unlock()
	reapRound() // the workers began to wait in the round before: kept
	idle.mu.Lock()
	extra := idle.round != r0+1 // the background reaper's tick came meanwhile
	idle.mu.Unlock()
	if n := idleWorkers(); n < burst && !extra {
		t.Fatalf("%d idle workers after one round, want %d", n, burst)
	}
	reapRound()
	waitCond(t, "the idle workers ended", func() bool { return workersEnded.Load()-ended >= burst })
}
