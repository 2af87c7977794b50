package supervisor

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
)

// fanout sends req to every worker that is not stopped, in worker id
// order, and returns one call per worker. Request ids follow upstream:
// <VerbName>-<workerId>-<taskId>. Actor only: the actor's order is the
// order in which every worker sees the requests.
func (a *actor) fanout(req *command.Request) []*call {
	a.nextTask++
	var calls []*call
	// Encoded once for all the workers (outbound); on an error, which
	// AllowPartial leaves to nothing here, each worker's writer encodes
	// and reports it.
	content, _ := frame.Marshal(req)
	for _, w := range a.sortedWorkers() {
		if w.runState == command.RunState_STOPPED {
			continue
		}
		id := fmt.Sprintf("%s-%d-%d", command.VerbName(req), w.id, a.nextTask)
		c, err := w.sendShared(&command.WorkerRequest{Id: proto.String(id), Content: req}, content)
		if err != nil {
			a.log.WithField("worker", w.id).Warnf("fan-out of %s: %v", id, err)
			continue
		}
		calls = append(calls, c)
	}
	return calls
}

func (a *actor) sortedWorkers() []*workerProc {
	ws := make([]*workerProc, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].id < ws[j].id })
	return ws
}

// outcome is one worker's answer to a fanned-out request. resp is nil when
// the worker did not answer; err then says why.
type outcome struct {
	worker uint32
	resp   *command.WorkerResponse
	err    string
}

func (o outcome) ok() bool {
	return o.resp != nil && o.resp.GetStatus() == command.ResponseStatus_OK
}

// gather waits for every call until timeout (0: no limit), forwarding the
// workers' PROCESSING answers to c (when not nil) as upstream does. A worker
// that misses the deadline is marked NOT_ANSWERING and named in its outcome.
func (s *Supervisor) gather(c *session, calls []*call, timeout time.Duration) []outcome {
	out := make([]outcome, len(calls))
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	expired := false
	for i, cl := range calls {
		out[i].worker = cl.worker.id
	wait:
		for {
			if expired {
				// Past the deadline: take only what already arrived.
				select {
				case r, ok := <-cl.final:
					if ok {
						out[i].resp = r
					} else {
						out[i].err = "exited before answering"
					}
				default:
					out[i].err = fmt.Sprintf("did not answer within %v", timeout)
					s.notAnswering(cl)
				}
				break wait
			}
			select {
			case p := <-cl.progress:
				if c != nil {
					c.processing(fmt.Sprintf("Worker %d is processing %s. %s", cl.worker.id, cl.id, p.GetMessage()))
				}
			case r, ok := <-cl.final:
				if ok {
					out[i].resp = r
				} else {
					out[i].err = "exited before answering"
				}
				break wait
			case <-deadline:
				expired = true
			}
		}
	}
	if c != nil {
		c.trace.noteOutcomes(out)
	}
	return out
}

// notAnswering forgets a call whose worker missed its deadline and marks
// the worker NOT_ANSWERING before the verb answers, so that a query sent
// after the answer sees it. gather never runs in the actor, so it may wait.
func (s *Supervisor) notAnswering(cl *call) {
	cl.worker.forget(cl.id)
	w := cl.worker
	// Synchronous, so that the terminal answer naming the worker is sent
	// after its run state says NOT_ANSWERING: a status read right after it
	// agrees. gather never runs in the actor.
	s.do(func(a *actor) {
		if a.workers[w.id] == w && w.runState == command.RunState_RUNNING {
			w.runState = command.RunState_NOT_ANSWERING
		}
	})
}

// aggregate folds the outcomes of a mutation the way upstream reports them:
// every worker OK → ok; otherwise a message listing each worker's result.
func aggregate(outs []outcome) (ok bool, msg string) {
	ok = true
	parts := make([]string, 0, len(outs))
	for _, o := range outs {
		switch {
		case o.ok():
			parts = append(parts, fmt.Sprintf("%d: OK", o.worker))
		case o.resp != nil:
			ok = false
			parts = append(parts, fmt.Sprintf("%d: %s", o.worker, o.resp.GetMessage()))
		default:
			ok = false
			parts = append(parts, fmt.Sprintf("%d: worker %d %s", o.worker, o.worker, o.err))
		}
	}
	if ok {
		return true, "Successfully applied request to all workers"
	}
	return false, strings.Join(parts, ", ")
}

func workerKey(id uint32) string { return strconv.FormatUint(uint64(id), 10) }
