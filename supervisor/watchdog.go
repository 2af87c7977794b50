package supervisor

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
)

// The watchdog finds hung workers (stopped, wedged, deadlocked) and
// replaces them, whether or not anyone asks for their status.
//
// Every worker_timeout/2 it sends each running worker a liveness probe (a
// status request, which a worker answers as soon as it reads it) unless
// the previous probe still waits. A worker whose probe waits for
// worker_timeout is marked NOT_ANSWERING; one whose probe waits for
// hungAfter × worker_timeout is killed and replaced: a new worker is
// started in its slot with the current state and the listeners (handed
// over before the old one is killed, so that no accept gap appears), then
// the old one is killed and the replacement audited (worker.exit and
// worker.relaunch). From the instant a worker hangs, it is replaced within
// (hungAfter + 1) × worker_timeout: up to worker_timeout/2 until the next
// probe, hungAfter × worker_timeout of silence, and up to worker_timeout/2
// until the tick that notices it.
const hungAfter = 3

// watch runs the watchdog until the supervisor stops.
func (s *Supervisor) watch() {
	t := time.NewTicker(s.cfg.WorkerTimeout / 2)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.submit(func(a *actor) { a.probeWorkers(now) })
		case <-s.stopped:
			return
		}
	}
}

// probeWorkers is one round of the watchdog. Actor only.
func (a *actor) probeWorkers(now time.Time) {
	if a.stopping {
		return
	}
	timeout := a.cfg.WorkerTimeout
	for _, w := range a.sortedWorkers() {
		if w.replaced || w.runState == command.RunState_STOPPING || w.runState == command.RunState_STOPPED {
			continue
		}
		if w.probe != nil {
			select {
			case _, ok := <-w.probe.final:
				w.probe = nil
				if !ok {
					continue // the worker is exiting; workerExited handles it
				}
				if w.runState == command.RunState_NOT_ANSWERING {
					w.runState = command.RunState_RUNNING
					a.log.WithFields(map[string]any{"worker": w.id, "pid": w.pid}).Info("worker answers again")
				}
			default:
				silent := now.Sub(w.probeSent)
				if silent >= hungAfter*timeout {
					a.replaceHung(w, silent)
				} else if silent >= timeout && w.runState == command.RunState_RUNNING {
					w.runState = command.RunState_NOT_ANSWERING
					a.log.WithFields(map[string]any{"worker": w.id, "pid": w.pid}).
						Warnf("worker did not answer its liveness probe within %v (worker_timeout): NOT_ANSWERING", timeout)
				}
				continue
			}
		}
		a.nextTask++
		req := &command.WorkerRequest{Id: proto.String(fmt.Sprintf("STATUS-probe-%d-%d", w.id, a.nextTask)),
			Content: &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}}}
		c, err := w.send(req)
		if err != nil {
			continue
		}
		w.probe, w.probeSent = c, now
	}
}

// replaceHung starts a worker in w's slot, handing it the listeners, then
// kills w, and audits both. If no worker can be started, w is killed all
// the same and its slot is relaunched as after a crash. Actor only.
func (a *actor) replaceHung(w *workerProc, silent time.Duration) {
	w.replaced = true
	w.runState = command.RunState_STOPPED // no more fan-out to it
	w.forget(w.probe.id)
	w.probe = nil
	nw, err := a.spawnWorker(w.slot)
	outcome := "killed"
	if kerr := w.kill(); kerr != nil {
		outcome = "could not be killed (" + kerr.Error() + "): it may still hold connections"
	}
	reason := fmt.Sprintf("worker %d (pid %d) did not answer for %v (%d × worker_timeout %v): %s",
		w.id, w.pid, silent.Round(time.Millisecond), hungAfter, a.cfg.WorkerTimeout, outcome)
	lf := a.log.WithFields(map[string]any{"worker": w.id, "pid": w.pid, "slot": w.slot})
	if err != nil {
		w.replaced = false // its exit relaunches the slot, with the crash backoff
		reason += fmt.Sprintf("; starting its replacement failed: %v", err)
		lf.Error(reason)
	} else {
		reason += fmt.Sprintf(" and replaced by worker %d (pid %d)", nw.id, nw.pid)
		lf.Warn(reason)
	}
	a.recordSystem(audit.VerbWorkerExit, audit.CodeWorkerExit, audit.ResultErr, reason)
	a.emitEvent("main", &command.Event{Kind: command.EventKind_WORKER_KILLED.Enum()})
	if nw != nil {
		a.recordSystem(audit.VerbWorkerRelaunch, audit.CodeWorkerRelaunch, audit.ResultOK,
			fmt.Sprintf("worker %d (pid %d) replaces hung worker %d in slot %d", nw.id, nw.pid, w.id, w.slot))
		a.emitEvent("main", &command.Event{Kind: command.EventKind_WORKER_RELAUNCHED.Enum()})
	}
}
