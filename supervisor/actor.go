package supervisor

import (
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"os"
)

// actor is everything only the state actor's goroutine may touch: the
// configuration state, the bound listeners, the worker table and the
// counters. The one actor of a supervisor is created by Run and held by the
// loop goroutine alone; other goroutines reach it only as the argument of a
// job they hand to do or submit, which the loop runs one at a time, in
// submission order. Mutations are therefore totally ordered: workers, the
// state file and the audit chain see the same order. The loop runs for the
// life of the process, so that a job submitted late (a worker exit noticed
// during shutdown) still runs instead of blocking its sender.
//
// actor embeds the Supervisor for what every goroutine may use (the
// configuration, the log, the audit broker, events, the job queue).
type actor struct {
	*Supervisor

	state        *state.ConfigState
	listeners    listenerTable
	workers      map[uint32]*workerProc
	serverConfig *command.ServerConfig // the bootstrap frame of new workers (runtime changes included)
	// clusterMetricsOff: configure_metrics DISABLED is in force (sent at
	// start for disable_cluster_metrics, or by an operator since): new
	// workers get it after their initial state.
	clusterMetricsOff bool
	// mainCleared: the supervisor's own counters (mainCounters) at the
	// last configure_metrics CLEAR; replaced, never changed in place.
	mainCleared map[string]int64
	// notes: what checkSettings kept but found without effect (a
	// cluster's answer never sent), for the OK answer of the verb
	// being applied; reset by mutate.
	notes        []string
	nextWorkerID uint32
	nextTask     uint64
	stopping     bool
	loadingState bool
	slots        []slot        // crash backoff per worker slot (backoff.go)
	prebound     listenerTable // bound by a reload before its plan is applied (reload_listeners.go)
	accessFile   *os.File      // the access log file workers write themselves, nil if none (accessfile.go)
	accessFailed bool          // opening it failed: the workers' records go through the supervisor

	// metricsClears counts the configure_metrics CLEAR fanned out, so
	// that the statsd exporter knows when the counters it reads restarted
	// (runStatsd): it is read in the actor step that fans a query out, and
	// each worker reads its channel in order.
	metricsClears uint64
}

func newActor(s *Supervisor) *actor {
	return &actor{
		Supervisor:        s,
		state:             state.New(),
		listeners:         listenerTable{},
		workers:           map[uint32]*workerProc{},
		serverConfig:      s.cfg.ServerConfig(),
		clusterMetricsOff: s.cfg.DisableClusterMetrics,
		slots:             make([]slot, s.cfg.WorkerCount),
	}
}

// loop runs the jobs of the queue until it is closed. A panic in a job is
// recovered and logged: the actor goes on with the next job.
func (s *Supervisor) loop(a *actor) {
	for job := range s.jobs {
		s.runJob(a, job)
	}
}

func (s *Supervisor) runJob(a *actor, job func(*actor)) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Errorf("internal error in the state actor (recovered): %v", r)
		}
	}()
	job(a)
}

// submit queues job for the actor without waiting for it to run.
func (s *Supervisor) submit(job func(*actor)) {
	go func() { s.jobs <- job }()
}

// do runs job in the actor and waits for it. It must not be called from
// the actor itself (a job that needs another actor method calls it
// directly).
func (s *Supervisor) do(job func(*actor)) bool {
	done := make(chan struct{})
	s.jobs <- func(a *actor) { defer close(done); job(a) }
	<-done
	return true
}
