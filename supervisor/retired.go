package supervisor

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// Prometheus reads a counter as the count of one process since it
// started: it may only grow, or fall to zero when that process restarts
// (rate() and increase() read any decrease as such a restart, and count
// the whole new value as new). /metrics sums the workers' counters, so a
// worker leaving the table (a crash, a hung worker replaced, an upgrade)
// would take its counts out of the sum and make every counter fall to
// what the other workers counted. retiredMetrics keeps the counts of the
// workers gone and the scrape adds them to the sum: counters and latency
// sketches (a summary's _count and _sum are counters too), not gauges,
// which say what is now. A worker told to stop (an upgrade, a stop of the
// proxy) answers the stop with its final metrics once drained (final):
// those replace what its last answer to a scrape gave; meanwhile that
// answer stays in the sum (leaving). A worker that ends without them (a
// crash, a hung worker killed, a drain cut at soft_stop_deadline: lost)
// leaves its last answer to a scrape, and what it counted after that is
// lost with it. A configure_metrics CLEAR, which restarts every counter,
// forgets them; so does a cluster or backend leaving the configuration,
// as the workers forget theirs. query_metrics (sozu metrics get) sums the
// workers it asks, as upstream's does.
type retiredMetrics struct {
	on     atomic.Bool // /metrics is served: only then are stops marked
	mu     sync.Mutex
	clears uint64                            // actor.metricsClears at the last note
	seq    uint64                            // the fan-out of the last note
	last   map[uint32]*command.WorkerMetrics // the last answer of each worker of the table
	gone   *command.WorkerMetrics            // counters and sketches of the workers gone, summed
	// leaving holds the last answer of each worker told to stop that is
	// no longer asked and whose final metrics are awaited.
	leaving map[uint32]*command.WorkerMetrics
	// stops are the workers told to stop, by id, until no note may
	// still bring an answer of theirs.
	stops map[uint32]stopMark
}

// stopMark is a worker told to stop: the fan-out (actor.nextTask) and
// actor.metricsClears then, and whether its final metrics are awaited.
type stopMark struct {
	seq, clears uint64
	awaiting    bool
}

// expect marks worker id as told to stop at the fan-out seq, in the
// epoch clears: its final metrics (final) or its end without them (lost)
// follow.
func (r *retiredMetrics) expect(id uint32, seq, clears uint64) {
	if !r.on.Load() {
		return // no note prunes stops
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stops == nil {
		r.stops = map[uint32]stopMark{}
	}
	r.stops[id] = stopMark{seq: seq, clears: clears, awaiting: true}
}

// final takes wm, the final metrics of worker id, which expect marked:
// they replace its last answer, in the sum of the workers gone. Final
// metrics of an epoch a CLEAR ended since are dropped, as that CLEAR
// dropped the counts of the workers gone.
func (r *retiredMetrics) final(id uint32, wm *command.WorkerMetrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.settle(id)
	if !ok {
		return
	}
	delete(r.leaving, id)
	if !r.epoch(st.clears) {
		return
	}
	delete(r.last, id)
	r.gone = addRetired(r.gone, wm)
}

// settle marks the stop of worker id, which expect marked, as no longer
// awaiting its final metrics, and returns it; false when there is no such
// stop, or it was settled already. r.mu is held.
func (r *retiredMetrics) settle(id uint32) (stopMark, bool) {
	st, ok := r.stops[id]
	if !ok || !st.awaiting {
		return st, false
	}
	st.awaiting = false
	r.stops[id] = st
	return st, true
}

// lost says that worker id, which expect marked, ended without its final
// metrics: its last answer to a scrape joins the workers gone.
func (r *retiredMetrics) lost(id uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.settle(id); !ok {
		return
	}
	if wm := r.leaving[id]; wm != nil {
		r.gone = addRetired(r.gone, wm)
		delete(r.leaving, id)
	}
	// Still in last (no note since it was told to stop): the next note
	// moves it to gone.
}

// epoch brings r to the epoch clears (actor.metricsClears; they only
// grow): a later one forgets every count kept, as the workers' CLEAR
// did. It reports false for an earlier one, whose counts that CLEAR
// dropped.
func (r *retiredMetrics) epoch(clears uint64) bool {
	if r.last != nil && clears < r.clears {
		return false
	}
	if r.last == nil || clears != r.clears {
		r.last, r.gone, r.leaving, r.clears = map[uint32]*command.WorkerMetrics{}, nil, map[uint32]*command.WorkerMetrics{}, clears
	}
	return true
}

// note records the answers of one scrape: answers by worker id, from the
// fan-out seq (actor.nextTask after it; a scrape whose fan-out is older
// than one already noted changes nothing: its answers and its table are
// older, as does one of an epoch a CLEAR ended), live the workers of the
// table then, clears actor.metricsClears then, known the clusters and
// backends of the configuration then (backend ids by cluster id). It
// returns the counts of the workers gone, to add to the sum (nil when
// none), which the caller must not change, and the workers of answers
// whose counts these already hold (held), whose answers the sum must
// leave out.
func (r *retiredMetrics) note(answers map[uint32]*command.WorkerMetrics, seq uint64, live []uint32, clears uint64, known map[string]map[string]bool) (*command.WorkerMetrics, []uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last != nil && seq < r.seq || !r.epoch(clears) {
		return r.sum(), r.held(answers)
	}
	r.seq = seq
	for id, wm := range answers {
		st, stopped := r.stops[id]
		switch {
		case !stopped:
			r.last[id] = wm
		case st.awaiting && st.clears == r.clears:
			// Asked before it was told to stop: its newest answer, until
			// its final metrics come.
			r.leaving[id] = wm
			delete(r.last, id)
		}
	}
	isLive := map[uint32]bool{}
	for _, id := range live {
		if _, stopped := r.stops[id]; !stopped {
			isLive[id] = true
		}
	}
	for id, wm := range r.last {
		if isLive[id] {
			continue
		}
		if st := r.stops[id]; st.awaiting && st.clears == r.clears {
			r.leaving[id] = wm
		} else {
			r.gone = addRetired(r.gone, wm)
		}
		delete(r.last, id)
	}
	if r.gone != nil {
		r.gone = pruneRetired(r.gone, known)
	}
	for id, wm := range r.leaving {
		r.leaving[id] = pruneRetired(wm, known)
	}
	for id, st := range r.stops {
		// No note accepted from now on is older than its stop: none
		// brings an answer of it.
		if !st.awaiting && r.seq > st.seq {
			delete(r.stops, id)
		}
	}
	return r.sum(), r.held(answers)
}

// held returns the workers of answers whose counts sum holds already:
// told to stop (their last answer or final metrics taken), or, for a
// note older than the last, gone since.
func (r *retiredMetrics) held(answers map[uint32]*command.WorkerMetrics) []uint32 {
	var ids []uint32
	for id := range answers {
		if r.last[id] != nil {
			continue
		}
		if st, ok := r.stops[id]; ok && st.awaiting && r.leaving[id] == nil {
			continue // nothing of it kept yet
		}
		ids = append(ids, id)
	}
	return ids
}

// sum is gone plus the workers leaving (nil when none).
func (r *retiredMetrics) sum() *command.WorkerMetrics {
	if len(r.leaving) == 0 {
		return r.gone
	}
	out := r.gone
	for _, id := range slices.Sorted(maps.Keys(r.leaving)) {
		out = addRetired(out, r.leaving[id])
	}
	return out
}

// addRetired returns base (nil: none yet; never changed in place) plus
// the counters and sketches of wm.
func addRetired(base, wm *command.WorkerMetrics) *command.WorkerMetrics {
	out := &command.WorkerMetrics{Proxy: addCounts(base.GetProxy(), wm.GetProxy()), Clusters: map[string]*command.ClusterMetrics{}}
	maps.Copy(out.Clusters, base.GetClusters())
	for id, cm := range wm.GetClusters() {
		old := out.Clusters[id]
		nc := &command.ClusterMetrics{Cluster: addCounts(old.GetCluster(), cm.GetCluster())}
		byID := map[string]int{}
		for _, b := range old.GetBackends() {
			byID[b.GetBackendId()] = len(nc.Backends)
			nc.Backends = append(nc.Backends, b)
		}
		for _, b := range cm.GetBackends() {
			i, ok := byID[b.GetBackendId()]
			if !ok {
				byID[b.GetBackendId()] = len(nc.Backends)
				nc.Backends = append(nc.Backends, &command.BackendMetrics{BackendId: b.BackendId, Metrics: addCounts(nil, b.GetMetrics())})
				continue
			}
			nc.Backends[i] = &command.BackendMetrics{BackendId: b.BackendId, Metrics: addCounts(nc.Backends[i].GetMetrics(), b.GetMetrics())}
		}
		out.Clusters[id] = nc
	}
	return out
}

// addCounts returns a new map: base's counters and sketches plus m's; m's
// gauges are left out. A metric whose type differs between the two keeps
// base's.
func addCounts(base, m map[string]*command.FilteredMetrics) map[string]*command.FilteredMetrics {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]*command.FilteredMetrics{}
	}
	for name, v := range m {
		old, had := out[name]
		switch in := v.GetInner().(type) {
		case *command.FilteredMetrics_Count:
			if !had {
				out[name] = v
			} else if oc, ok := old.GetInner().(*command.FilteredMetrics_Count); ok {
				out[name] = &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: oc.Count + in.Count}}
			}
		case *command.FilteredMetrics_Histogram:
			if !had {
				out[name] = v
			} else if oh, ok := old.GetInner().(*command.FilteredMetrics_Histogram); ok {
				s := pm.NewSketch()
				if s.Merge(oh.Histogram) == nil && s.Merge(in.Histogram) == nil {
					out[name] = &command.FilteredMetrics{Inner: &command.FilteredMetrics_Histogram{Histogram: s.Histogram()}}
				}
			}
		}
	}
	return out
}

// pruneRetired returns gone without the clusters and backends known no
// longer holds: gone itself when it holds none of those, else a copy
// (gone may be read by a scrape meanwhile).
func pruneRetired(gone *command.WorkerMetrics, known map[string]map[string]bool) *command.WorkerMetrics {
	var out *command.WorkerMetrics
	for id, cm := range gone.GetClusters() {
		backends, ok := known[id]
		var kept []*command.BackendMetrics
		for _, b := range cm.GetBackends() {
			if backends[b.GetBackendId()] {
				kept = append(kept, b)
			}
		}
		if ok && len(kept) == len(cm.GetBackends()) {
			continue
		}
		if out == nil {
			out = &command.WorkerMetrics{Proxy: gone.GetProxy(), Clusters: maps.Clone(gone.GetClusters())}
		}
		if !ok {
			delete(out.Clusters, id)
			continue
		}
		out.Clusters[id] = &command.ClusterMetrics{Cluster: cm.GetCluster(), Backends: kept}
	}
	if out == nil {
		return gone
	}
	return out
}
