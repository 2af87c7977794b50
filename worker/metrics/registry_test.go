package metrics

import (
	"sync"
	"testing"
	"time"

	pm "github.com/sozu-go/sozu/proto/metrics"
)

// Recording a request end allocates nothing once its cluster and backend
// exist (the request path's contract).
func TestEndAllocatesNothing(t *testing.T) {
	r := New()
	c := r.Cluster("shop")
	b := c.Backend("shop-0")
	now := time.Now()
	q := Request{Start: now.Add(-time.Millisecond), Status: 200, Cluster: c, Backend: b, Connect: 50 * time.Microsecond,
		BackendSent: now.Add(-500 * time.Microsecond), BytesIn: 100, BytesOut: 2000}
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

// Disabled, nothing is counted but the open connections gauge stays
// balanced; Clear zeroes counters and sketches, not that gauge.
func TestEnableDisableClear(t *testing.T) {
	r := New()
	r.Accepted()
	r.End(&Request{Status: 503, Own: true, Start: time.Now()}, time.Now())
	r.SetEnabled(false)
	r.Accepted()
	r.End(&Request{Status: 200}, time.Now())
	r.Closed()
	r.SetEnabled(true)
	wm := r.Snapshot()
	p := wm.GetProxy()
	if p[pm.HTTPRequests].GetCount() != 1 || p[pm.Status5xx].GetCount() != 1 || p[pm.HTTPErrors].GetCount() != 1 || p[pm.AcceptedConnections].GetCount() != 1 {
		t.Errorf("after a request on, one off: %v", p)
	}
	if p[pm.ClientConnections].GetGauge() != 1 {
		t.Errorf("client.connections %d, want 1", p[pm.ClientConnections].GetGauge())
	}
	r.Clear()
	p = r.Snapshot().GetProxy()
	if p[pm.HTTPRequests].GetCount() != 0 || p[pm.RequestTime].GetHistogram().GetCount() != 0 || p[pm.ClientConnections].GetGauge() != 1 {
		t.Errorf("after Clear: %v", p)
	}
	var nilReg *Registry // metrics off in tests: every method is a no-op
	nilReg.Accepted()
	nilReg.Closed()
	nilReg.Handshake(0x0304)
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
				r.End(&Request{Status: 200, Start: time.Now(), Cluster: c, Backend: c.Backend("shop-0"), BackendSent: time.Now()}, time.Now())
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
