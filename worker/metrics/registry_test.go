package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// Recording a request end allocates nothing once its cluster and backend
// exist (the request path's contract).
func TestEndAllocatesNothing(t *testing.T) {
	r := New()
	c := r.Cluster("shop")
	b := c.Backend("shop-0")
	now := time.Now()
	q := Request{Start: now.Add(-time.Millisecond), Parsed: true, Status: 200, Cluster: c, Backend: b, Connect: 50 * time.Microsecond,
		BackendSent: 500 * time.Microsecond, BytesIn: 100, BytesOut: 2000}
	r.End(&q, now) // the sketches' first bins
	if n := testing.AllocsPerRun(1000, func() {
		_ = r.Cluster("shop").Backend("shop-0")
		r.End(&q, now)
	}); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}

// Retain drops the clusters and backends the configuration no longer
// has; a detached entry a request still holds records harmlessly.
func TestRetainBoundsMemory(t *testing.T) {
	r := New()
	for _, id := range []string{"a", "b", "c"} {
		c := r.Cluster(id)
		c.Backend(id + "-0")
		c.Backend(id + "-1")
	}
	held := r.Cluster("b").Backend("b-0")
	r.Retain(map[string]map[string]bool{"a": {"a-1": true}, "c": {}})
	wm := r.Snapshot()
	if len(wm.GetClusters()) != 2 || wm.GetClusters()["b"] != nil {
		t.Errorf("clusters after Retain: %v", wm.GetClusters())
	}
	if bs := wm.GetClusters()["a"].GetBackends(); len(bs) != 1 || bs[0].GetBackendId() != "a-1" {
		t.Errorf("backends of a: %v", bs)
	}
	if bs := wm.GetClusters()["c"].GetBackends(); len(bs) != 0 {
		t.Errorf("backends of c: %v", bs)
	}
	r.End(&Request{Status: 200, Cluster: r.Cluster("x"), Backend: held}, time.Now())
	if c := r.Snapshot().GetClusters()["b"]; c != nil {
		t.Errorf("a removed cluster came back: %v", c)
	}
}

// With cluster metrics off (configure_metrics disabled, as upstream), the
// proxy level counts on and the cluster and backend levels do not; a
// cluster that recorded nothing is not shown, one that did shows what it
// recorded. Clear zeroes counters and sketches, not the open connections
// gauge.
func TestClusterMetricsOffClear(t *testing.T) {
	r := New()
	r.Accepted(HTTP)
	shop := r.Cluster("shop")
	r.End(&Request{Status: 503, Own: true, Start: time.Now(), Parsed: true, Cluster: shop}, time.Now())
	r.SetClusterMetrics(false)
	r.Accepted(HTTP)
	r.End(&Request{Status: 200, Cluster: shop, Backend: shop.Backend("shop-0")}, time.Now())
	r.End(&Request{Status: 200, Cluster: r.Cluster("quiet")}, time.Now())
	r.TCPSession("db", "db-0", time.Millisecond).In(10)
	r.Closed()
	wm := r.Snapshot()
	p := wm.GetProxy()
	if p[pm.HTTPRequests].GetCount() != 3 || p[pm.Status5xx].GetCount() != 1 || p[pm.Status2xx].GetCount() != 2 ||
		p[pm.HTTPErrors].GetCount() != 1 || p[pm.AcceptedConnections].GetCount() != 2 || p[pm.TCPRequests].GetCount() != 1 || p[pm.BytesIn].GetCount() != 10 {
		t.Errorf("proxy level, cluster metrics off: %v", p)
	}
	if p[pm.ClientConnections].GetGauge() != 1 {
		t.Errorf("client.connections %d, want 1", p[pm.ClientConnections].GetGauge())
	}
	if c := wm.GetClusters()["shop"]; c.GetCluster()[pm.Requests].GetCount() != 1 || c.GetCluster()[pm.Status2xx].GetCount() != 0 {
		t.Errorf("cluster shop, recorded before: %v", c)
	}
	if wm.GetClusters()["quiet"] != nil || wm.GetClusters()["db"] != nil {
		t.Errorf("clusters that recorded nothing are shown: %v", wm.GetClusters())
	}
	r.SetClusterMetrics(true)
	r.End(&Request{Status: 200, Cluster: shop}, time.Now())
	if n := r.Snapshot().GetClusters()["shop"].GetCluster()[pm.Requests].GetCount(); n != 2 {
		t.Errorf("cluster requests after turning them on again: %d, want 2", n)
	}
	r.Clear()
	p = r.Snapshot().GetProxy()
	if p[pm.HTTPRequests].GetCount() != 0 || p[pm.RequestTime].GetHistogram().GetCount() != 0 || p[pm.ClientConnections].GetGauge() != 1 {
		t.Errorf("after Clear: %v", p)
	}
	var nilReg *Registry // metrics off in tests: every method is a no-op
	nilReg.Accepted(HTTP)
	nilReg.Closed()
	nilReg.Handshake(0x0304, "h2")
	nilReg.End(&Request{Status: 200}, time.Now())
	nilReg.TCPSession("a", "b", time.Millisecond)
	if nilReg.Cluster("a") != nil {
		t.Error("a nil registry made a cluster")
	}
}

// Requests recorded from many goroutines while snapshots, clears and
// retains run: every count adds up (run under -race).
func TestConcurrentRecording(t *testing.T) {
	r := New()
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				r.Snapshot()
				r.Retain(map[string]map[string]bool{"shop": {"shop-0": true}})
			}
		}
	})
	for range workers {
		wg.Go(func() {
			for range each {
				c := r.Cluster("shop")
				r.End(&Request{Status: 200, Start: time.Now(), Parsed: true, Cluster: c, Backend: c.Backend("shop-0")}, time.Now())
			}
		})
	}
	wg.Wait()
	close(stop)
	side.Wait()
	wm := r.Snapshot()
	if n := wm.GetProxy()[pm.HTTPRequests].GetCount(); n != workers*each {
		t.Errorf("requests %d, want %d", n, workers*each)
	}
	c := wm.GetClusters()["shop"]
	if n := c.GetCluster()[pm.Requests].GetCount(); n != workers*each {
		t.Errorf("cluster requests %d, want %d", n, workers*each)
	}
	if n := c.GetCluster()[pm.BackendResponseTime].GetHistogram().GetCount(); n != workers*each {
		t.Errorf("response time samples %d, want %d", n, workers*each)
	}
}

// TestStatusCodeCounters: upstream's per-status counters, for every
// answer (http.status.<code>) and for the proxy's own (http.<code>.errors,
// http.<code>.redirection), only for the statuses they list.
func TestStatusCodeCounters(t *testing.T) {
	r := New()
	for _, q := range []Request{{Status: 200}, {Status: 200}, {Status: 404, Own: true}, {Status: 404},
		{Status: 301, Own: true}, {Status: 418, Own: true}, {Status: 503, Own: true}} {
		r.End(&q, time.Now())
	}
	p := r.Snapshot().Proxy
	for name, want := range map[string]int64{
		pm.StatusCode(200): 2, pm.StatusCode(404): 2, pm.StatusCode(301): 1, pm.StatusCode(503): 1,
		pm.AnswerError(404): 1, pm.AnswerError(503): 1, pm.Redirection(301): 1, pm.AnswerError(400): 0,
		pm.Status4xx: 3,
	} {
		if got := p[name].GetCount(); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if _, ok := p["http.status.418"]; ok {
		t.Errorf("http.status.418 shown: no such upstream counter")
	}
	r.Clear()
	if got := r.Snapshot().Proxy[pm.StatusCode(200)].GetCount(); got != 0 {
		t.Errorf("after Clear: %d", got)
	}
}

// TestBackendMoves: upstream's backend.up and backend.down count moves by
// backend id, not while cluster metrics are off, and clear with the rest.
func TestBackendMoves(t *testing.T) {
	r := New()
	r.BackendMoved("c", "b", false)
	r.BackendMoved("c", "b", true)
	r.BackendMoved("c", "b", false)
	r.SetClusterMetrics(false)
	r.BackendMoved("c", "b", true) // off: not recorded
	r.SetClusterMetrics(true)
	moves := func() (int64, int64) {
		for _, b := range r.Snapshot().Clusters["c"].GetBackends() {
			if b.GetBackendId() == "b" {
				return b.Metrics[pm.BackendUp].GetCount(), b.Metrics[pm.BackendDown].GetCount()
			}
		}
		t.Fatal("backend b not in the snapshot")
		return 0, 0
	}
	if up, down := moves(); up != 1 || down != 2 {
		t.Fatalf("up %d down %d, want 1 and 2", up, down)
	}
	r.Clear()
	if up, down := moves(); up != 0 || down != 0 {
		t.Fatalf("after Clear: up %d down %d", up, down)
	}
}

// TestServiceTime: service_time, the request's time without its
// backend's (from the first connect attempt to the end, as the access
// record's backend time), recorded at the proxy and cluster levels
// beside request_time; a request the proxy answers itself spends all its
// time there.
func TestServiceTime(t *testing.T) {
	r := New()
	shop := r.Cluster("shop")
	t0 := time.Now()
	r.End(&Request{Status: 200, Start: t0, Parsed: true, Cluster: shop, Backend: shop.Backend("shop-0"),
		Reached: true, BackendStart: 2 * time.Millisecond, Connect: time.Millisecond, BackendSent: 3 * time.Millisecond}, t0.Add(10*time.Millisecond))
	r.End(&Request{Status: 404, Own: true, Start: t0, Parsed: true, Cluster: shop}, t0.Add(5*time.Millisecond))
	wm := r.Snapshot()
	for level, m := range map[string]map[string]*command.FilteredMetrics{"proxy": wm.GetProxy(), "cluster": wm.GetClusters()["shop"].GetCluster()} {
		s := pm.NewSketch()
		if err := s.Merge(m[pm.ServiceTime].GetHistogram()); err != nil {
			t.Fatalf("%s: %v", level, err)
		}
		// 2 ms (10 - 8 from the first connect attempt) and 5 ms, within 1 %.
		p := s.Percentiles()
		if p.GetSamples() != 2 || p.GetP_50() < 1980 || p.GetP_50() > 2020 || p.GetP_100() < 4950 || p.GetP_100() > 5050 {
			t.Errorf("%s service_time: %v, want 2 samples, 2 ms and 5 ms", level, p)
		}
	}
	if _, ok := pm.Lookup(pm.ServiceTime, false); !ok {
		t.Error("service_time is not a proxy metric")
	}
	if _, ok := pm.Lookup(pm.ServiceTime, true); !ok {
		t.Error("service_time is not a cluster metric")
	}
}
