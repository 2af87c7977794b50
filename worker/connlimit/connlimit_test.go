package connlimit

import (
	"sync"
	"testing"
)

func TestLimit(t *testing.T) {
	l := &Limit{Max: 2}
	if !l.Acquire() || !l.Acquire() || l.Acquire() {
		t.Fatal("a limit of 2 did not admit exactly 2")
	}
	l.Release()
	if !l.Acquire() || l.Open() != 2 {
		t.Fatalf("after a release: open %d", l.Open())
	}
	var nilLimit *Limit
	if !nilLimit.Acquire() || nilLimit.Open() != 0 {
		t.Fatal("a nil limit is not unlimited")
	}
	nilLimit.Release()

	c := &Limit{Max: 50}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Acquire() {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got != 50 || c.Open() != 50 {
		t.Fatalf("concurrent acquires: %d admitted, %d open, want 50", got, c.Open())
	}
}
