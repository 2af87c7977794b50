package relay

import (
	"sync/atomic"
	"time"
)

// Traffic is what the two ways of a relay share to tell a quiet relay
// from one whose bytes flow one way only (a server pushing events to a
// client that sends nothing): a relay's timeouts bound the silence of the
// whole relay, not that of each way on its own. Safe for concurrent use;
// the zero value is a relay that never moved a byte: call Moved when it
// starts.
type Traffic struct {
	last    atomic.Int64 // when a byte was last read or written, either way (UnixNano)
	writing atomic.Int32 // ways now in a write (its write deadline bounds it)
}

// Moved notes bytes read or written (or the relay's start) at now.
func (t *Traffic) Moved(now time.Time) { t.last.Store(now.UnixNano()) }

// BeginWrite and EndWrite bracket a way's write: while one is under way
// the other way is not idle, its peer still taking bytes.
func (t *Traffic) BeginWrite() { t.writing.Add(1) }

// EndWrite ends what BeginWrite began.
func (t *Traffic) EndWrite() { t.writing.Add(-1) }

// ReadAgainUntil is for a way whose read waited idle for idle, until now:
// it returns the deadline to wait on to, and true, when the relay is not
// idle after all (the other way is writing: idle more from now; bytes
// moved less than idle ago: until idle after them), else false.
func (t *Traffic) ReadAgainUntil(now time.Time, idle time.Duration) (time.Time, bool) {
	if t.writing.Load() > 0 {
		return now.Add(idle), true
	}
	if at := time.Unix(0, t.last.Load()).Add(idle); at.After(now) {
		return at, true
	}
	return time.Time{}, false
}
