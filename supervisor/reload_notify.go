package supervisor

import (
	"fmt"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/supervisor/sdnotify"
)

// systemd notifications (sd_notify(3), package sdnotify; docs/systemd.md):
// READY=1 once a worker serves, RELOADING=1 … READY=1 around a reload,
// STOPPING=1 when a stop begins. Without $NOTIFY_SOCKET they are no-ops.

// notify sends states to systemd; a failure is logged: systemd's view is
// not worth stopping the proxy for.
func (s *Supervisor) notify(states ...string) {
	if err := sdnotify.Notify(states...); err != nil {
		s.log.Warnf("telling systemd %q: %v", states, err)
	}
}

// servingCount is the number of worker slots served: workers replaced
// (upgraded or killed as hung) or stopping, which a supervisor that took
// over in an upgrade inherits while they drain, do not count, and a slot
// whose worker is being upgraded (the old one and its replacement both
// live) counts once.
func (a *actor) servingCount() int {
	slots := map[int]bool{}
	for _, w := range a.workers {
		if !w.replaced && w.runState != command.RunState_STOPPING && w.runState != command.RunState_STOPPED {
			slots[w.slot] = true
		}
	}
	return len(slots)
}

// notifyReady sends READY=1 once the first worker has confirmed that it
// serves its state: it has read its bootstrap, initial state and
// listeners and answers a status request (a worker answers nothing before
// it serves). Its STATUS= names how many workers serve (servingCount). A worker that confirms nothing within hungAfter ×
// worker_timeout gets no READY=1: systemd then fails the start at its own
// TimeoutStartSec, which is the truth.
func (s *Supervisor) notifyReady() {
	var calls []*call
	var n int
	s.do(func(a *actor) {
		n = a.servingCount()
		calls = a.fanout(&command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	})
	first := make(chan uint32, len(calls))
	done := make(chan struct{}) // ends the waits of the workers that did not answer first
	defer close(done)
	for _, cl := range calls {
		go func() {
			select {
			case r, ok := <-cl.final:
				if ok && r.GetStatus() == command.ResponseStatus_OK {
					first <- cl.worker.id
				}
			case <-done:
			}
		}()
	}
	limit := time.NewTimer(hungAfter * s.cfg.WorkerTimeout)
	defer limit.Stop()
	select {
	case id := <-first:
		s.log.WithField("worker", id).Info("a worker serves: READY=1")
		s.notify(sdnotify.Ready, sdnotify.Status(fmt.Sprintf("serving: %d workers", n)))
	case <-limit.C:
		s.log.Errorf("no worker confirmed it serves within %v: READY=1 not sent", hungAfter*s.cfg.WorkerTimeout)
		for _, cl := range calls {
			cl.worker.forget(cl.id)
		}
	case <-s.stopped:
	}
}
