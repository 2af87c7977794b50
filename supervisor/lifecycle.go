package supervisor

import (
	"fmt"
	"time"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/supervisor/sdnotify"
)

// Lifecycle: the verbs that stop the proxy (verbs.Lifecycle in the verb
// catalogue; state files are in statefiles.go, audit reopen in audit.go).

// stopVerb stops every worker, answers, then stops the supervisor.
func (s *Supervisor) stopVerb(c *session, soft bool) bool {
	if soft {
		c.processing("Performing soft stop...")
	} else {
		c.processing("Performing hard stop...")
	}
	s.emitEvent("main", &command.Event{Kind: command.EventKind_SOZU_STOP_REQUESTED.Enum()})
	ok, failed := s.stopAll(soft, func(msg string) { c.processing(msg) })
	c.ok(fmt.Sprintf("Successfully closed %d workers, %d errors, stopping the main process...", ok, failed), nil)
	if c.trace != nil {
		c.trace.finish = true // once the answer and its record are out
		return true
	}
	s.finish()
	return false
}

// stopAll stops every worker, then lets the supervisor stop. From its
// first instant, every listener is shut (boundListener.shut): the kernel
// refuses new connections, whichever process holds a copy of the socket.
// Then each worker is sent the stop verb:
//   - soft: SoftStop; each worker stops accepting, closes its idle
//     connections and lets in-flight requests finish. The workers still
//     running at soft_stop_deadline are killed, which closes their
//     connections, and a worker.exit record names each with the open
//     connections it last reported.
//   - hard: HardStop; the workers still running after worker_timeout are
//     killed.
//
// progress, when not nil, receives the progress messages. It returns how
// many workers exited cleanly and how many did not.
func (s *Supervisor) stopAll(soft bool, progress func(string)) (ok, failed int) {
	var calls []*call
	var procs []*workerProc
	var req *command.Request
	if soft {
		req = &command.Request{RequestType: &command.Request_SoftStop{SoftStop: &command.SoftStop{}}}
	} else {
		req = &command.Request{RequestType: &command.Request_HardStop{HardStop: &command.HardStop{}}}
	}
	s.notify(sdnotify.Stopping, sdnotify.Status(stopName(soft))) // reload_notify.go
	s.do(func(a *actor) {
		a.stopping = true
		a.closeListenersLocked()
		a.log.Infof("%s: listeners shut, new connections are refused; stopping %d workers", stopName(soft), len(a.workers))
		for _, w := range a.sortedWorkers() {
			w.runState = command.RunState_STOPPING
			procs = append(procs, w)
		}
		calls = a.fanout(req)
		for _, c := range calls {
			a.expectFinal(c.worker)
		}
	})
	limit := s.cfg.WorkerTimeout
	if soft {
		limit = s.cfg.SoftStopDeadline
	}
	// Each worker answers its stop with its final metrics (departures.go).
	tracked := map[*workerProc]<-chan struct{}{}
	for _, c := range calls {
		tracked[c.worker] = s.trackStop(c)
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	expired := false
	for _, w := range procs {
		if !expired {
			select {
			case <-w.done:
			case <-deadline.C:
				expired = true
			}
		}
		if expired {
			select {
			case <-w.done:
			default:
				s.cut(w, soft, limit, progress)
				<-w.done
			}
		}
		if w.wait == nil {
			ok++
		} else {
			failed++
		}
		if d := tracked[w]; d != nil {
			<-d // the reader ends with the process: its final metrics are in
		}
	}
	s.flushStatsdLast()
	return ok, failed
}

// cut kills a worker still running at the stop's deadline, and says what
// was cut (audited for a soft stop, whose drain it ends).
func (s *Supervisor) cut(w *workerProc, soft bool, limit time.Duration, progress func(string)) {
	msg := fmt.Sprintf("worker %d did not stop within %v (worker_timeout): killing it", w.id, limit)
	if soft {
		open := "its open connections (it reported none)"
		if n := w.draining.Load(); n >= 0 {
			open = fmt.Sprintf("%d open connection%s", n, plural(n))
		}
		msg = fmt.Sprintf("soft stop deadline (%v) reached: worker %d (pid %d) killed, cutting %s", limit, w.id, w.pid, open)
		s.recordSystem(audit.VerbWorkerExit, audit.CodeWorkerExit, audit.ResultErr, msg)
	}
	s.log.WithFields(map[string]any{"worker": w.id, "pid": w.pid}).Warn(msg)
	if progress != nil {
		progress(msg)
	}
	if err := w.kill(); err != nil {
		s.log.Error(err)
	}
}

// drainFormat is the PROCESSING message of a draining worker (see the
// worker's soft stop): its open connections (trackStop reads it).
const drainFormat = "draining: %d connections open"

func stopName(soft bool) string {
	if soft {
		return "soft stop"
	}
	return "hard stop"
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}
