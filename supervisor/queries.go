package supervisor

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/supervisor/admission"
)

// Queries: the verbs that read the state or ask the workers and change
// nothing (verbs.Query in the verb catalogue).

// workerInfos lists the workers in id order. Actor only.
func (a *actor) workerInfos() *command.WorkerInfos {
	infos := &command.WorkerInfos{}
	for _, w := range a.sortedWorkers() {
		infos.Vec = append(infos.Vec, &command.WorkerInfo{
			Id: proto.Uint32(w.id), Pid: proto.Int32(int32(w.pid)), RunState: w.runState.Enum(),
		})
	}
	return infos
}

// status probes every worker: RUNNING if it answered OK in time,
// NOT_ANSWERING otherwise; a stopping worker keeps its state.
func (s *Supervisor) status(c *session, req *command.Request) bool {
	var calls []*call
	var procs []*workerProc
	s.do(func(a *actor) {
		procs = a.sortedWorkers()
		calls = a.fanout(req)
	})
	c.processing("Querying status of workers...")
	outs := s.gather(nil, calls, s.cfg.WorkerTimeout)
	c.trace.noteOutcomes(outs)
	answered := map[uint32]bool{}
	for _, o := range outs {
		answered[o.worker] = o.ok()
	}
	var infos *command.WorkerInfos
	s.do(func(a *actor) {
		for _, w := range procs {
			if a.workers[w.id] != w {
				continue
			}
			switch {
			case answered[w.id] && w.runState != command.RunState_STOPPING:
				w.runState = command.RunState_RUNNING
			case !answered[w.id] && w.runState == command.RunState_RUNNING:
				w.runState = command.RunState_NOT_ANSWERING
			}
		}
		infos = a.workerInfos()
	})
	return c.ok(s.statusMessage(c.ident.Role == admission.Admin)+s.upgrades.summary(), &command.ResponseContent{ContentType: &command.ResponseContent_Workers{Workers: infos}})
}

// query fans a query out and answers with every worker's content and the
// supervisor's own under "main".
func (s *Supervisor) query(c *session, req *command.Request) bool {
	var calls []*call
	var main *command.ResponseContent
	s.do(func(a *actor) {
		main = a.mainAnswer(req)
		calls = a.fanout(req)
	})
	c.processing("Querying cluster...")
	outs := s.gather(c, calls, s.cfg.WorkerTimeout)
	m := map[string]*command.ResponseContent{}
	if main != nil {
		m["main"] = main
	}
	var failed []string
	for _, o := range outs {
		switch {
		case o.ok():
			content := o.resp.GetContent()
			if content == nil {
				content = &command.ResponseContent{}
			}
			m[workerKey(o.worker)] = content
		case o.resp != nil:
			failed = append(failed, fmt.Sprintf("%d: %s", o.worker, o.resp.GetMessage()))
		default:
			failed = append(failed, fmt.Sprintf("%d: worker %d %s", o.worker, o.worker, o.err))
		}
	}
	if len(failed) > 0 {
		return c.fail("query failed on some workers: " + strings.Join(failed, ", "))
	}
	return c.ok("Successfully queried clusters", &command.ResponseContent{ContentType: &command.ResponseContent_WorkerResponses{WorkerResponses: &command.WorkerResponses{Map: m}}})
}

// mainAnswer is the supervisor's own answer to a query. Actor only.
func (a *actor) mainAnswer(req *command.Request) *command.ResponseContent {
	rc, _ := a.state.Query(req)
	return rc
}
