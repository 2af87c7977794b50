package metrics

import (
	"sort"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// Count, Gauge and Histogram make one FilteredMetrics.
func Count(v int64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: v}}
}

// Gauge makes a gauge value.
func Gauge(v uint64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Gauge{Gauge: v}}
}

func histogram(s *pm.Sketch) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Histogram{Histogram: s.Histogram()}}
}

// Snapshot returns the registry's values as the worker sends them to the
// supervisor: counters and gauges as they are, times as encoded sketches
// (metrics.Sketch.Histogram) that the supervisor merges. Backends come
// sorted by id. Safe to call while requests are recorded: each value is
// read atomically, not the whole.
func (r *Registry) Snapshot() *command.WorkerMetrics {
	wm := &command.WorkerMetrics{Proxy: map[string]*command.FilteredMetrics{}, Clusters: map[string]*command.ClusterMetrics{}}
	for i := range r.proxy {
		wm.Proxy[proxyNames[i]] = Count(r.proxy[i].Load())
	}
	for _, c := range pm.StatusCodes {
		wm.Proxy[pm.StatusCode(c)] = Count(r.codes[c].Load())
	}
	for _, c := range pm.AnswerErrorCodes {
		wm.Proxy[pm.AnswerError(c)] = Count(r.own[c].Load())
	}
	for _, c := range pm.RedirectionCodes {
		wm.Proxy[pm.Redirection(c)] = Count(r.own[c].Load())
	}
	wm.Proxy[pm.ClientConnections] = Gauge(uint64(max(r.clients.Load(), 0)))
	wm.Proxy[pm.UDPActiveFlows] = Gauge(uint64(max(r.flows.Load(), 0)))
	wm.Proxy[pm.RequestTime] = histogram(r.reqTime)
	wm.Proxy[pm.ServiceTime] = histogram(r.svcTime)
	on := r.clusterOn.Load()
	for id, c := range *r.clusters.Load() {
		if !on && !c.recorded() {
			continue // cluster metrics off: a cluster is shown for what it recorded before
		}
		cm := &command.ClusterMetrics{Cluster: map[string]*command.FilteredMetrics{}}
		for i, name := range clusterNames {
			cm.Cluster[name] = Count(c.c[i].Load())
		}
		cm.Cluster[pm.UDPActiveFlows] = Gauge(uint64(max(c.flows.Load(), 0)))
		cm.Cluster[pm.RequestTime] = histogram(c.reqTime)
		cm.Cluster[pm.ServiceTime] = histogram(c.svcTime)
		cm.Cluster[pm.BackendConnectionTime] = histogram(c.connect)
		cm.Cluster[pm.BackendResponseTime] = histogram(c.response)
		for _, b := range *c.backends.Load() {
			bm := &command.BackendMetrics{BackendId: &b.ID, Metrics: map[string]*command.FilteredMetrics{}}
			for i, name := range clusterNames {
				bm.Metrics[name] = Count(b.c[i].Load())
			}
			bm.Metrics[pm.UDPActiveFlows] = Gauge(uint64(max(b.flows.Load(), 0)))
			bm.Metrics[pm.BackendUp] = Count(b.wentUp.Load())
			bm.Metrics[pm.BackendDown] = Count(b.wentDown.Load())
			bm.Metrics[pm.BackendConnectionTime] = histogram(b.connect)
			bm.Metrics[pm.BackendResponseTime] = histogram(b.response)
			cm.Backends = append(cm.Backends, bm)
		}
		sort.Slice(cm.Backends, func(i, j int) bool { return cm.Backends[i].GetBackendId() < cm.Backends[j].GetBackendId() })
		wm.Clusters[id] = cm
	}
	return wm
}

// BackendOf returns the entry of backend id in cm, appending an empty one
// when there is none.
func BackendOf(cm *command.ClusterMetrics, id string) *command.BackendMetrics {
	for _, b := range cm.Backends {
		if b.GetBackendId() == id {
			return b
		}
	}
	b := &command.BackendMetrics{BackendId: &id, Metrics: map[string]*command.FilteredMetrics{}}
	cm.Backends = append(cm.Backends, b)
	sort.Slice(cm.Backends, func(i, j int) bool { return cm.Backends[i].GetBackendId() < cm.Backends[j].GetBackendId() })
	return b
}
