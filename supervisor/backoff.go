package supervisor

import "time"

// Crash backoff, per worker slot. The supervisor runs worker_count slots;
// each holds one worker, and a worker relaunched after an exit (or a hang)
// takes the slot of the one it replaces. A slot that crash-loops is slowed
// down on its own: the other slots relaunch theirs at once, so one bad
// slot never leaves the proxy without workers while others can run.
//
// The rule (docs/architecture.md, "Workers"):
//   - a worker that ran at least stableRun resets its slot's count, and is
//     relaunched at once;
//   - a worker that ran less is a quick crash: its slot's count grows by
//     one, and it is relaunched after crashDelay(count): at once for the
//     first, then 100 ms, doubling with each further quick crash, capped at
//     maxCrashDelay (5 s).
const (
	stableRun      = 5 * time.Second
	firstCrashStep = 100 * time.Millisecond
	maxCrashDelay  = 5 * time.Second
)

// slot is one worker slot's crash record. Actor only.
type slot struct {
	crashes int  // quick crashes in a row
	waiting bool // a delayed relaunch is scheduled
}

// crashDelay is the relaunch delay after the n-th quick crash in a row of
// a slot (n ≥ 1).
func crashDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := firstCrashStep
	for i := 2; i < n; i++ {
		d *= 2
		if d >= maxCrashDelay {
			return maxCrashDelay
		}
	}
	return d
}

// exited records the exit of a slot's worker that ran for ran, and returns
// how long to wait before relaunching it.
func (s *slot) exited(ran time.Duration) time.Duration {
	if ran >= stableRun {
		s.crashes = 0
		return 0
	}
	s.crashes++
	return crashDelay(s.crashes)
}
