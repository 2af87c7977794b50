package supervisor

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// A worker that leaves in an orderly way (replaced by upgrade_worker or
// in a main upgrade, a soft or hard stop of the proxy) answers its stop
// once it stopped serving, just before it exits, with its final metrics:
// the WorkerMetrics of a query_metrics answer, which hold what it counted
// after the last statsd flush or scrape (requests served while draining,
// WebSocket and TCP bytes counted when the connection ended). The
// supervisor passes them once to each exporter: to statsd as the increase
// since the worker's last flush (statsdFinals, runStatsd), to /metrics in
// place of the worker's last answer to a scrape (retiredMetrics.final). A
// worker that ends without them (killed: a crash, a hung worker replaced,
// a drain cut at soft_stop_deadline) loses what it counted since its last
// flush or scrape, as before.

// departure is the final metrics of a worker, and actor.metricsClears
// when it was told to stop: the epoch they count in.
type departure struct {
	wm     *command.WorkerMetrics
	clears uint64
}

// statsdFinals holds the final metrics of the workers told to stop until
// a statsd flush takes them. Safe for concurrent use.
type statsdFinals struct {
	on      atomic.Bool // statsd runs: only then are final metrics kept
	mu      sync.Mutex
	waiting map[uint32]uint64 // told to stop, final metrics not in yet: the epoch then
	arrived map[uint32]departure
}

// expect marks worker id as told to stop in the epoch clears.
func (f *statsdFinals) expect(id uint32, clears uint64) {
	if !f.on.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting == nil {
		f.waiting, f.arrived = map[uint32]uint64{}, map[uint32]departure{}
	}
	f.waiting[id] = clears
}

// left says that worker id, which expect marked, ended: with its final
// metrics wm, or without (nil).
func (f *statsdFinals) left(id uint32, wm *command.WorkerMetrics) {
	f.mu.Lock()
	defer f.mu.Unlock()
	clears, ok := f.waiting[id]
	if !ok {
		return
	}
	delete(f.waiting, id)
	if wm != nil {
		f.arrived[id] = departure{wm: wm, clears: clears}
	}
}

// take returns, for a flush whose answers count in the epoch clears, the
// final metrics that arrived in that epoch (by worker key), which it
// forgets, and the workers whose final metrics are still awaited, which
// the flush must treat as silent (their last values kept). Final metrics
// of an earlier epoch are dropped: the CLEAR since restarted what statsd
// sends from; those of a later one wait for a flush of their epoch.
func (f *statsdFinals) take(clears uint64) (finals map[string]*command.WorkerMetrics, waiting []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.waiting {
		waiting = append(waiting, workerKey(id))
	}
	for id, d := range maps.Clone(f.arrived) {
		switch {
		case d.clears < clears:
			delete(f.arrived, id)
		case d.clears > clears:
			waiting = append(waiting, workerKey(id))
		default:
			if finals == nil {
				finals = map[string]*command.WorkerMetrics{}
			}
			finals[workerKey(id)] = d.wm
			delete(f.arrived, id)
		}
	}
	return finals, waiting
}

// expectFinal marks w, just told to stop (in this actor step), as a
// worker whose final metrics are awaited. Actor only.
func (a *actor) expectFinal(w *workerProc) {
	a.retired.expect(w.id, a.nextTask, a.metricsClears)
	a.finals.expect(w.id, a.metricsClears)
}

// trackStop follows c, the stop sent to a worker expectFinal marked: it
// records the open connections the worker reports while draining
// ("draining: N connections open"), then passes its final metrics to the
// exporters, or says it ended without them. The returned channel is
// closed once that is done.
func (s *Supervisor) trackStop(c *call) <-chan struct{} {
	done := make(chan struct{})
	w := c.worker
	go func() {
		defer close(done)
		var final *command.WorkerResponse
		defer func() {
			wm := final.GetContent().GetWorkerMetrics()
			if final.GetStatus() != command.ResponseStatus_OK {
				wm = nil
			}
			if wm == nil {
				s.retired.lost(w.id)
			} else {
				s.retired.final(w.id, wm)
			}
			s.finals.left(w.id, wm)
		}()
		for {
			select {
			case p := <-c.progress:
				var n int64
				if _, err := fmt.Sscanf(p.GetMessage(), drainFormat, &n); err == nil && n >= 0 {
					w.draining.Store(n)
				}
			case final = <-c.final: // nil when closed: the channel ended first
				return
			case <-w.readerDone:
				// The reader delivers before it stops: an answer it
				// read is there now. It stops without closing c.final
				// on a hand-over.
				select {
				case final = <-c.final:
				default:
				}
				return
			}
		}
	}()
	return done
}

// flushStatsdLast makes the statsd sender flush once more, without
// asking any worker, and waits for it (at most worker_timeout and a
// flush interval): the final metrics of the workers a stop of the proxy
// ended reach statsd before the supervisor exits.
func (s *Supervisor) flushStatsdLast() {
	if !s.finals.on.Load() {
		return
	}
	done := make(chan struct{})
	t := time.NewTimer(s.cfg.WorkerTimeout + statsdInterval)
	defer t.Stop()
	select {
	case s.statsdLast <- done:
	case <-t.C:
		return
	case <-s.stopped:
		return
	}
	select {
	case <-done:
	case <-t.C:
	}
}
