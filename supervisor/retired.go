package supervisor

import (
	"maps"
	"sync"

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
// workers gone, as their last answer to a scrape gave them, and the scrape
// adds them to the sum: counters and latency sketches (a summary's _count
// and _sum are counters too), not gauges, which say what is now. What a
// worker counted after its last scrape is lost with it. A
// configure_metrics CLEAR, which restarts every counter, forgets them;
// so does a cluster or backend leaving the configuration, as the workers
// forget theirs. query_metrics (sozu metrics get) sums the workers it asks,
// as upstream's does.
type retiredMetrics struct {
	mu     sync.Mutex
	clears uint64                            // actor.metricsClears at the last note
	seq    uint64                            // the fan-out of the last note
	last   map[uint32]*command.WorkerMetrics // the last answer of each worker of the table
	gone   *command.WorkerMetrics            // counters and sketches of the workers gone, summed
}

// note records the answers of one scrape: answers by worker id, from the
// fan-out seq (actor.nextTask after it; a scrape whose fan-out is older
// than one already noted changes nothing: its answers and its table are
// older), live the workers of the table then,
// clears actor.metricsClears then, known the clusters and backends of the
// configuration then (backend ids by cluster id). It returns the counts
// of the workers gone, to add to the sum (nil when none), which the
// caller must not change.
func (r *retiredMetrics) note(answers map[uint32]*command.WorkerMetrics, seq uint64, live []uint32, clears uint64, known map[string]map[string]bool) *command.WorkerMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last != nil && seq < r.seq {
		return r.gone
	}
	r.seq = seq
	if r.last == nil || clears != r.clears {
		r.last, r.gone, r.clears = map[uint32]*command.WorkerMetrics{}, nil, clears
	}
	for id, wm := range answers {
		r.last[id] = wm
	}
	isLive := map[uint32]bool{}
	for _, id := range live {
		isLive[id] = true
	}
	for id, wm := range r.last {
		if !isLive[id] {
			r.gone = addRetired(r.gone, wm)
			delete(r.last, id)
		}
	}
	if r.gone != nil {
		r.gone = pruneRetired(r.gone, known)
	}
	return r.gone
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
