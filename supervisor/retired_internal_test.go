package supervisor

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

func retiredWorker(requests int64, conns uint64, times ...time.Duration) *command.WorkerMetrics {
	s := pm.NewSketch()
	for _, d := range times {
		s.Add(d)
	}
	count := func(n int64) *command.FilteredMetrics {
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: n}}
	}
	return &command.WorkerMetrics{
		Proxy: map[string]*command.FilteredMetrics{pm.HTTPRequests: count(requests),
			pm.ClientConnections: {Inner: &command.FilteredMetrics_Gauge{Gauge: conns}}},
		Clusters: map[string]*command.ClusterMetrics{"shop": {
			Cluster:  map[string]*command.FilteredMetrics{pm.Requests: count(requests), pm.BackendResponseTime: {Inner: &command.FilteredMetrics_Histogram{Histogram: s.Histogram()}}},
			Backends: []*command.BackendMetrics{{BackendId: proto.String("shop-0"), Metrics: map[string]*command.FilteredMetrics{pm.Requests: count(requests)}}},
		}},
	}
}

// The counts of a worker that left the table stay, summed with those of
// the workers that left before it: counters and sketches, not gauges; an
// older answer does not replace a newer one; a clear forgets them, and so
// does a cluster or backend leaving the configuration.
func TestRetiredMetrics(t *testing.T) {
	var r retiredMetrics
	known := map[string]map[string]bool{"shop": {"shop-0": true}}
	ms := time.Millisecond
	if g := r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 2, ms, ms, ms), 1: retiredWorker(4, 1, ms)}, 10, []uint32{0, 1}, 0, known); g != nil {
		t.Fatalf("nothing gone yet: %v", g)
	}
	// An older answer of worker 0 (a slower scrape) changes nothing.
	r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(1, 2)}, 9, []uint32{0, 1}, 0, known)
	g := r.note(map[uint32]*command.WorkerMetrics{1: retiredWorker(5, 1, ms, ms)}, 11, []uint32{1, 2}, 0, known) // worker 0 left
	if n := g.GetProxy()[pm.HTTPRequests].GetCount(); n != 3 {
		t.Errorf("gone http.requests %d, want 3", n)
	}
	if _, ok := g.GetProxy()[pm.ClientConnections]; ok {
		t.Error("a gauge of a worker gone is kept")
	}
	// A slower scrape, sent before worker 0 left, brings it back in
	// nowhere: it would be counted twice.
	r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 2, ms, ms, ms), 1: retiredWorker(4, 1, ms)}, 10, []uint32{0, 1}, 0, known)
	g = r.note(map[uint32]*command.WorkerMetrics{2: retiredWorker(1, 0)}, 12, []uint32{2}, 0, known) // worker 1 left
	shop := g.GetClusters()["shop"]
	if n := shop.GetCluster()[pm.Requests].GetCount(); n != 8 {
		t.Errorf("gone cluster requests %d, want 8", n)
	}
	if h := shop.GetCluster()[pm.BackendResponseTime].GetHistogram(); h.GetCount() != 5 {
		t.Errorf("gone samples %d, want 5", h.GetCount())
	}
	if len(shop.GetBackends()) != 1 || shop.GetBackends()[0].GetMetrics()[pm.Requests].GetCount() != 8 {
		t.Errorf("gone backends %v", shop.GetBackends())
	}
	// The backend leaves the configuration, then the cluster.
	if g := r.note(nil, 13, []uint32{2}, 0, map[string]map[string]bool{"shop": {}}); len(g.GetClusters()["shop"].GetBackends()) != 0 || shop.GetBackends()[0] == nil {
		t.Errorf("a backend gone from the configuration is kept: %v", g.GetClusters()["shop"])
	}
	if g := r.note(nil, 14, []uint32{2}, 0, map[string]map[string]bool{}); len(g.GetClusters()) != 0 || g.GetProxy()[pm.HTTPRequests].GetCount() != 8 {
		t.Errorf("after the cluster left: %v", g)
	}
	// A clear forgets them all.
	if g := r.note(map[uint32]*command.WorkerMetrics{2: retiredWorker(0, 0)}, 15, []uint32{2}, 1, known); g != nil {
		t.Errorf("after a clear: %v", g)
	}
}
