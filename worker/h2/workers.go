package h2

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stream handlers run on pooled goroutines: a goroutine that has served a
// stream waits for the next one, of any connection, instead of exiting. A
// new goroutine per stream costs its creation and, for a handler as deep as
// a proxy's, growing its stack from the minimum each time; a pooled one
// keeps its grown stack.
//
// Idle workers wait on a stack, each on a channel of its own: a stream goes
// to the one on top (the most recently idle, its stack likely still in
// cache) by one channel send, and the wait is one receive: no select, no
// timer re-armed per stream. A reaper, running only while workers are
// idle, ends those idle for a whole round of workerIdle (so between one and
// two rounds). The pool never holds more goroutines than were ever running
// handlers at once.

// workerIdle is the reaper's round.
const workerIdle = 10 * time.Second

type handlerJob struct {
	c *Conn
	s *Stream
}

// idleWorker is a worker waiting for a job on its channel, closed by the
// reaper to end it.
type idleWorker struct {
	job   chan handlerJob // capacity 1: the one send of startHandler never blocks
	round uint64          // the reaper's round when it began to wait
}

var idle struct {
	mu      sync.Mutex
	stack   []*idleWorker // oldest at the bottom
	round   uint64
	reaping bool // the reaper runs
}

// workersStarted and workersEnded count worker goroutines (tests).
var workersStarted, workersEnded atomic.Int64

// startHandler runs c's handler for s on an idle worker, or a new one.
func (c *Conn) startHandler(s *Stream) {
	idle.mu.Lock()
	if n := len(idle.stack); n > 0 {
		w := idle.stack[n-1]
		idle.stack[n-1] = nil
		idle.stack = idle.stack[:n-1]
		idle.mu.Unlock()
		w.job <- handlerJob{c, s}
		return
	}
	idle.mu.Unlock()
	workersStarted.Add(1)
	go worker(handlerJob{c, s})
}

func worker(j handlerJob) {
	w := &idleWorker{job: make(chan handlerJob, 1)}
	for {
		j.c.runHandler(j.s)
		idle.mu.Lock()
		w.round = idle.round
		idle.stack = append(idle.stack, w)
		if !idle.reaping {
			idle.reaping = true
			go reap()
		}
		idle.mu.Unlock()
		var ok bool
		if j, ok = <-w.job; !ok {
			workersEnded.Add(1)
			return
		}
	}
}

// reap runs reapRound every workerIdle while workers wait.
func reap() {
	t := time.NewTicker(workerIdle)
	defer t.Stop()
	for range t.C {
		if !reapRound() {
			return
		}
	}
}

// reapRound starts a round: it ends the workers that have waited since
// before the previous one, and reports whether any still waits (when none
// does, the reaper stops and the next worker to wait starts it again).
func reapRound() bool {
	idle.mu.Lock()
	defer idle.mu.Unlock()
	idle.round++
	n := 0
	for n < len(idle.stack) && idle.stack[n].round+1 < idle.round {
		close(idle.stack[n].job)
		n++
	}
	rest := copy(idle.stack, idle.stack[n:])
	clear(idle.stack[rest:])
	idle.stack = idle.stack[:rest]
	if rest == 0 {
		idle.reaping = false
	}
	return rest > 0
}
