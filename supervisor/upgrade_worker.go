package supervisor

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
)

// upgrade_worker: a worker is replaced without a dropped connection. A new
// worker is started in the old one's slot with the current state and the
// same listening sockets (handed over by SCM_RIGHTS, so both accept from
// the same kernel queues); once it answers a status probe, which it does
// only from its serving loop, the old worker is sent a soft stop: it stops
// accepting, closes its idle connections, and lets in-flight requests,
// WebSocket tunnels and TCP relays run to their natural end. The old worker
// still running at soft_stop_deadline is killed (audited with the
// connections it last reported open). The old worker takes no fan-out from
// the moment it is told to stop, and its exit relaunches nothing.

// serveDeadline bounds how long a new worker may take to serve (bootstrap,
// privilege drop, seccomp) before its upgrade is abandoned.
func (s *Supervisor) serveDeadline() time.Duration {
	return max(2*s.cfg.WorkerTimeout, 10*time.Second)
}

// upgradeWorkerVerb answers upgrade_worker.
func (s *Supervisor) upgradeWorkerVerb(c *session, id uint32) bool {
	c.processing(fmt.Sprintf("Upgrading worker %d...", id))
	msg, err := s.upgradeWorker(id)
	if err != nil {
		return c.fail(err.Error())
	}
	if c.trace != nil {
		c.trace.note = msg
	}
	return c.ok(msg, nil)
}

// upgradeWorker replaces worker id as described above. It returns once the
// new worker serves and the old one was told to stop (its drain goes on in
// the background), with a sentence saying so, or an error saying why the
// old worker keeps serving.
func (s *Supervisor) upgradeWorker(id uint32) (string, error) {
	var old, nw *workerProc
	var err error
	s.do(func(a *actor) {
		w := a.workers[id]
		switch {
		case a.stopping:
			err = errStopping
		case w == nil:
			err = fmt.Errorf("upgrade of worker %d: there is no such worker (see sozu status)", id)
		case w.replaced || w.upgrading || w.runState == command.RunState_STOPPED || w.runState == command.RunState_STOPPING:
			err = fmt.Errorf("upgrade of worker %d: it is already being replaced or stopped", id)
		}
		if err != nil {
			return
		}
		w.upgrading = true
		nw, err = a.spawnWorker(w.slot)
		if err != nil {
			w.upgrading = false
			err = fmt.Errorf("upgrade of worker %d: starting its replacement: %w; worker %d keeps serving", id, err, id)
			return
		}
		old = w
	})
	if err != nil {
		s.upgrades.note(s, command.EventKind_WORKER_UPGRADED, phaseFailed, err.Error())
		return "", err
	}
	s.upgrades.note(s, command.EventKind_WORKER_UPGRADED, phaseStarted,
		fmt.Sprintf("worker %d (pid %d) is being replaced by worker %d (pid %d)", old.id, old.pid, nw.id, nw.pid))
	if err := s.awaitServing(nw, s.serveDeadline()); err != nil {
		s.do(func(a *actor) {
			nw.replaced, nw.runState = true, command.RunState_STOPPED
			nw.kill()
			old.upgrading = false
		})
		err = fmt.Errorf("upgrade of worker %d: its replacement, worker %d (pid %d), did not serve: %v; it was killed and worker %d keeps serving",
			id, nw.id, nw.pid, err, id)
		s.recordSystem(audit.VerbWorkerExit, audit.CodeWorkerExit, audit.ResultErr, err.Error())
		s.upgrades.note(s, command.EventKind_WORKER_UPGRADED, phaseFailed, err.Error())
		return "", err
	}
	var stop *call
	s.do(func(a *actor) {
		old.upgrading = false
		old.replaced = true                     // its exit relaunches nothing
		old.runState = command.RunState_STOPPED // and it takes no more fan-out
		if old.probe != nil {
			old.forget(old.probe.id)
			old.probe = nil
		}
		a.nextTask++
		stop, err = old.send(&command.WorkerRequest{Id: proto.String(fmt.Sprintf("SOFT_STOP-upgrade-%d-%d", old.id, a.nextTask)),
			Content: &command.Request{RequestType: &command.Request_SoftStop{SoftStop: &command.SoftStop{}}}})
		if err == nil {
			a.expectFinal(old)
		}
	})
	limit := s.cfg.SoftStopDeadline
	if err != nil { // it died meanwhile: nothing to drain
		s.log.WithField("worker", old.id).Infof("upgrade: soft stop not sent: %v", err)
	} else {
		s.trackStop(stop) // departures.go
	}
	go s.drainUpgraded(old, nw, limit)
	msg := fmt.Sprintf("worker %d (pid %d) replaced by worker %d (pid %d), which serves; worker %d stops accepting and drains its connections (soft stop, at most soft_stop_deadline %v)",
		old.id, old.pid, nw.id, nw.pid, old.id, limit)
	s.log.WithFields(map[string]any{"worker": old.id, "pid": old.pid, "new_worker": nw.id, "new_pid": nw.pid}).Info("worker upgraded")
	s.upgrades.note(s, command.EventKind_WORKER_UPGRADED, phaseFinished, msg)
	return msg, nil
}

// awaitServing sends w a status probe and waits for its answer, for at
// most d: a worker answers it only once it serves.
func (s *Supervisor) awaitServing(w *workerProc, d time.Duration) error {
	var c *call
	var err error
	s.do(func(a *actor) {
		a.nextTask++
		c, err = w.send(&command.WorkerRequest{Id: proto.String(fmt.Sprintf("STATUS-serving-%d-%d", w.id, a.nextTask)),
			Content: &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}}})
	})
	if err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case resp, ok := <-c.final:
		if !ok {
			return fmt.Errorf("it exited (%s)", exitOf(w))
		}
		if resp.GetStatus() != command.ResponseStatus_OK {
			return fmt.Errorf("it answered %s: %s", resp.GetStatus(), resp.GetMessage())
		}
		return nil
	case <-t.C:
		w.forget(c.id)
		return fmt.Errorf("no answer within %v", d)
	}
}

// exitOf describes how w ended, or says it is still being reaped.
func exitOf(w *workerProc) string {
	select {
	case <-w.done:
		return describeExit(w.wait)
	default:
		return "channel closed"
	}
}

// drainUpgraded waits for the upgraded worker old to exit, killing it at
// limit (soft_stop_deadline), and audits how it ended. nw, its
// replacement, may be nil (not known to a successor supervisor).
func (s *Supervisor) drainUpgraded(old, nw *workerProc, limit time.Duration) {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-old.done:
		by := ""
		if nw != nil {
			by = fmt.Sprintf(" by worker %d (pid %d)", nw.id, nw.pid)
		}
		s.recordSystem(audit.VerbWorkerExit, audit.CodeWorkerExit, audit.ResultOK,
			fmt.Sprintf("worker %d (pid %d), replaced%s in an upgrade, drained and exited: %s",
				old.id, old.pid, by, describeExit(old.wait)))
	case <-t.C:
		s.cut(old, true, limit, nil)
		<-old.done
	case <-s.stopped:
	}
}
