package deadline

import (
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const min = time.Minute
	var l Lazy
	steps := []struct {
		now     time.Duration // after t0
		timeout time.Duration
		due     bool
	}{
		{0, min, true},                            // nothing armed
		{time.Second, min, false},                 // drifted 1 s of 60
		{7 * time.Second, min, false},             // 7 s
		{8 * time.Second, min, true},              // more than 7.5 s: re-armed at 68 s
		{9 * time.Second, 10 * time.Second, true}, // shorter timeout: at once
		{9500 * time.Millisecond, 10 * time.Second, false},
		{11 * time.Second, min, true}, // longer again, drifted far
	}
	for i, s := range steps {
		at, due := l.Due(t0.Add(s.now), s.timeout)
		if due != s.due || !at.Equal(t0.Add(s.now+s.timeout)) {
			t.Fatalf("step %d: due %v at %v, want %v", i, due, at, s.due)
		}
	}
	l.Forget()
	if _, due := l.Due(t0.Add(11*time.Second), min); !due {
		t.Fatal("not due after Forget")
	}
}

type fakeConn struct{ r, w int }

func (c *fakeConn) SetReadDeadline(time.Time) error  { c.r++; return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { c.w++; return nil }

func TestReadWrite(t *testing.T) {
	var c fakeConn
	var r, w Lazy
	now := time.Now()
	for i := 0; i < 100; i++ {
		Read(&c, &r, now.Add(time.Duration(i)*time.Millisecond), time.Minute)
		Write(&c, &w, now.Add(time.Duration(i)*time.Millisecond), time.Minute)
	}
	if c.r != 1 || c.w != 1 {
		t.Fatalf("armed %d reads and %d writes for 100 calls within 0.1 s", c.r, c.w)
	}
}
