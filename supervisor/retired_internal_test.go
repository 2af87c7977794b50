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
	if g, _ := r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 2, ms, ms, ms), 1: retiredWorker(4, 1, ms)}, 10, []uint32{0, 1}, 0, known); g != nil {
		t.Fatalf("nothing gone yet: %v", g)
	}
	// An older answer of worker 0 (a slower scrape) changes nothing.
	r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(1, 2)}, 9, []uint32{0, 1}, 0, known)
	g, _ := r.note(map[uint32]*command.WorkerMetrics{1: retiredWorker(5, 1, ms, ms)}, 11, []uint32{1, 2}, 0, known) // worker 0 left
	if n := g.GetProxy()[pm.HTTPRequests].GetCount(); n != 3 {
		t.Errorf("gone http.requests %d, want 3", n)
	}
	if _, ok := g.GetProxy()[pm.ClientConnections]; ok {
		t.Error("a gauge of a worker gone is kept")
	}
	// A slower scrape, sent before worker 0 left, brings it back in
	// nowhere: it would be counted twice.
	// Its answer of worker 0 is held: the scrape leaves it out of the sum,
	// which gone holds already.
	if _, held := r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 2, ms, ms, ms), 1: retiredWorker(4, 1, ms)}, 10, []uint32{0, 1}, 0, known); len(held) != 1 || held[0] != 0 {
		t.Errorf("held %v, want [0]", held)
	}
	g, _ = r.note(map[uint32]*command.WorkerMetrics{2: retiredWorker(1, 0)}, 12, []uint32{2}, 0, known) // worker 1 left
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
	if g, _ := r.note(nil, 13, []uint32{2}, 0, map[string]map[string]bool{"shop": {}}); len(g.GetClusters()["shop"].GetBackends()) != 0 || shop.GetBackends()[0] == nil {
		t.Errorf("a backend gone from the configuration is kept: %v", g.GetClusters()["shop"])
	}
	if g, _ := r.note(nil, 14, []uint32{2}, 0, map[string]map[string]bool{}); len(g.GetClusters()) != 0 || g.GetProxy()[pm.HTTPRequests].GetCount() != 8 {
		t.Errorf("after the cluster left: %v", g)
	}
	// A clear forgets them all.
	if g, _ := r.note(map[uint32]*command.WorkerMetrics{2: retiredWorker(0, 0)}, 15, []uint32{2}, 1, known); g != nil {
		t.Errorf("after a clear: %v", g)
	}
}

// A worker told to stop answers with its final metrics: they replace
// its last answer in the sum, once, whether they come before or after
// the note that finds it no longer asked; its answer to a scrape sent
// before the stop, noted after its final metrics, is neither kept nor
// summed again; a worker that ends without them leaves its last answer.
func TestRetiredFinalMetrics(t *testing.T) {
	known := map[string]map[string]bool{"shop": {"shop-0": true}}
	requests := func(g *command.WorkerMetrics) int64 { return g.GetProxy()[pm.HTTPRequests].GetCount() }

	// Final metrics after the note that finds the worker gone.
	var r retiredMetrics
	r.on.Store(true)
	r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 1), 1: retiredWorker(4, 1)}, 10, []uint32{0, 1}, 0, known)
	r.expect(0, 11, 0)
	g, held := r.note(map[uint32]*command.WorkerMetrics{1: retiredWorker(5, 1)}, 12, []uint32{1, 2}, 0, known)
	if requests(g) != 3 || len(held) != 0 {
		t.Errorf("while worker 0 drains: gone %d, held %v; want 3, none", requests(g), held)
	}
	r.final(0, retiredWorker(7, 0))
	if g, _ := r.note(map[uint32]*command.WorkerMetrics{1: retiredWorker(5, 1)}, 13, []uint32{1, 2}, 0, known); requests(g) != 7 {
		t.Errorf("after worker 0's final metrics: gone %d, want 7", requests(g))
	}
	// A slower scrape, sent before the stop, brings worker 0 back nowhere.
	if g, held := r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(5, 1), 1: retiredWorker(4, 1)}, 11, []uint32{0, 1}, 0, known); requests(g) != 7 || len(held) != 1 || held[0] != 0 {
		t.Errorf("stale scrape: gone %d, held %v; want 7, [0]", requests(g), held)
	}
	if g, _ := r.note(map[uint32]*command.WorkerMetrics{1: retiredWorker(6, 1)}, 14, []uint32{1}, 0, known); requests(g) != 7 {
		t.Errorf("later: gone %d, want 7", requests(g))
	}

	// Final metrics before any note after the stop; then a scrape sent
	// before the stop and noted after: its answer of worker 0 is held.
	r = retiredMetrics{}
	r.on.Store(true)
	r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 1)}, 10, []uint32{0}, 0, known)
	r.expect(0, 12, 0)
	r.final(0, retiredWorker(9, 0))
	g, held = r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(4, 1)}, 11, []uint32{0}, 0, known)
	if requests(g) != 9 || len(held) != 1 {
		t.Errorf("scrape sent before the stop: gone %d, held %v; want 9, [0]", requests(g), held)
	}
	if g, _ := r.note(nil, 13, []uint32{1}, 0, known); requests(g) != 9 {
		t.Errorf("after: gone %d, want 9 (counted once)", requests(g))
	}

	// A worker that ends without its final metrics leaves its last answer.
	r = retiredMetrics{}
	r.on.Store(true)
	r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 1)}, 10, []uint32{0}, 0, known)
	r.expect(0, 11, 0)
	r.note(nil, 12, []uint32{1}, 0, known)
	r.lost(0)
	r.final(0, retiredWorker(9, 0)) // too late: ignored
	if g, _ := r.note(nil, 13, []uint32{1}, 0, known); requests(g) != 3 {
		t.Errorf("lost: gone %d, want 3", requests(g))
	}

	// /metrics not served: no stop is marked (nothing would prune it),
	// and a worker gone leaves its last answer, as before.
	r = retiredMetrics{}
	r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 1)}, 10, []uint32{0}, 0, known)
	r.expect(0, 11, 0)
	r.final(0, retiredWorker(9, 0))
	if g, _ := r.note(nil, 12, []uint32{1}, 0, known); requests(g) != 3 || len(r.stops) != 0 {
		t.Errorf("off: gone %d, stops %v; want 3, none", requests(g), r.stops)
	}

	// Final metrics of an epoch a CLEAR ended are dropped.
	r = retiredMetrics{}
	r.on.Store(true)
	r.note(map[uint32]*command.WorkerMetrics{0: retiredWorker(3, 1)}, 10, []uint32{0}, 0, known)
	r.expect(0, 11, 0)
	r.note(nil, 12, []uint32{1}, 1, known)
	r.final(0, retiredWorker(9, 0))
	if g, _ := r.note(nil, 13, []uint32{1}, 1, known); g != nil {
		t.Errorf("after a clear: gone %v, want none", g)
	}
}

// statsd takes each worker's final metrics once, in their epoch, and
// treats the workers whose final metrics are awaited as silent.
func TestStatsdFinals(t *testing.T) {
	var f statsdFinals
	f.expect(0, 0) // statsd off: nothing kept
	f.left(0, retiredWorker(1, 0))
	if finals, waiting := f.take(0); finals != nil || waiting != nil {
		t.Fatalf("statsd off: %v %v", finals, waiting)
	}
	f.on.Store(true)
	f.expect(0, 0)
	f.expect(1, 0)
	f.expect(2, 1)
	if finals, waiting := f.take(0); finals != nil || len(waiting) != 3 {
		t.Errorf("none in yet: %v %v", finals, waiting)
	}
	f.left(0, retiredWorker(5, 0))
	f.left(1, nil) // killed
	f.left(2, retiredWorker(2, 0))
	finals, waiting := f.take(0)
	if len(finals) != 1 || finals["0"].GetProxy()[pm.HTTPRequests].GetCount() != 5 || len(waiting) != 1 || waiting[0] != "2" {
		t.Errorf("epoch 0: %v %v", finals, waiting)
	}
	if finals, _ := f.take(0); finals != nil {
		t.Errorf("taken twice: %v", finals)
	}
	if finals, waiting := f.take(1); len(finals) != 1 || finals["2"] == nil || waiting != nil {
		t.Errorf("epoch 1: %v %v", finals, waiting)
	}
}
