package h2

import "time"

// Stream handlers run on pooled goroutines: a goroutine that has served a
// stream waits a while for the next one, of any connection, instead of
// exiting. A new goroutine per stream costs its creation and, for a
// handler as deep as a proxy's, growing its stack from the minimum each
// time; a pooled one keeps its grown stack. The pool holds no more
// goroutines than were ever running handlers at once, and each idle one
// exits after workerIdle.

// workerIdle is how long an idle handler goroutine waits for a stream.
const workerIdle = 10 * time.Second

type handlerJob struct {
	c *Conn
	s *Stream
}

// jobs hands a stream to an idle worker waiting on it (unbuffered: a send
// succeeds only when one is waiting).
var jobs = make(chan handlerJob)

// startHandler runs c's handler for s on an idle worker, or a new one.
func (c *Conn) startHandler(s *Stream) {
	select {
	case jobs <- handlerJob{c, s}:
	default:
		go worker(handlerJob{c, s})
	}
}

func worker(j handlerJob) {
	j.c.runHandler(j.s)
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		select {
		case j = <-jobs:
			j.c.runHandler(j.s)
			t.Reset(workerIdle)
		case <-t.C:
			return
		}
	}
}
