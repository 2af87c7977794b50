package supervisor

import (
	"testing"
	"time"
)

func TestCrashDelay(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{1, 0}, {2, 100 * time.Millisecond}, {3, 200 * time.Millisecond}, {4, 400 * time.Millisecond},
		{5, 800 * time.Millisecond}, {6, 1600 * time.Millisecond}, {7, 3200 * time.Millisecond},
		{8, 5 * time.Second}, {9, 5 * time.Second}, {1000, 5 * time.Second},
	} {
		if got := crashDelay(tc.n); got != tc.want {
			t.Errorf("crashDelay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

// Slots keep their own counts, and a worker that ran stableRun resets its
// slot's.
func TestSlotBackoffIsPerSlot(t *testing.T) {
	var a, b slot
	for range 6 {
		a.exited(time.Millisecond)
	}
	if d := a.exited(time.Millisecond); d != 3200*time.Millisecond {
		t.Fatalf("7th quick crash: %v", d)
	}
	if d := b.exited(time.Millisecond); d != 0 {
		t.Fatalf("another slot's first quick crash waits %v", d)
	}
	if d := a.exited(stableRun); d != 0 || a.crashes != 0 {
		t.Fatalf("a stable run: delay %v, count %d", d, a.crashes)
	}
	if d := a.exited(time.Millisecond); d != 0 {
		t.Fatalf("first quick crash after a reset waits %v", d)
	}
}
