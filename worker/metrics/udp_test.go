package metrics

import (
	"testing"

	pm "github.com/sozu-go/sozu/proto/metrics"
)

// A UDP flow's datagrams count at the three levels without allocating;
// with recording off the counters stay put but the live-flow gauges stay
// balanced; clear zeroes the counters, not the gauges.
func TestFlowRecording(t *testing.T) {
	r := New()
	f := r.FlowStart("dns", "dns-0")
	if n := testing.AllocsPerRun(1000, func() { f.In(10); f.Out(30) }); n != 0 {
		t.Errorf("%v allocations per datagram", n)
	}
	r.SetClusterMetrics(false) // the proxy level counts on
	g := r.FlowStart("dns", "dns-0")
	g.In(5)
	r.SetClusterMetrics(true)
	wm := r.Snapshot()
	cm := wm.Clusters["dns"]
	for _, lvl := range []struct {
		name string
		m    map[string]int64
	}{
		{"proxy", map[string]int64{pm.UDPDatagramsIn: 1002, pm.UDPDatagramsOut: 1001, pm.UDPBytesIn: 10015, pm.UDPBytesOut: 30030, pm.UDPFlowsCreated: 2}},
		{"cluster", map[string]int64{pm.UDPDatagramsIn: 1001, pm.BytesIn: 10010, pm.BytesOut: 30030, pm.Requests: 1}},
		{"backend", map[string]int64{pm.UDPDatagramsOut: 1001, pm.BytesIn: 10010, pm.Requests: 1}},
	} {
		m := wm.Proxy
		switch lvl.name {
		case "cluster":
			m = cm.Cluster
		case "backend":
			m = cm.Backends[0].Metrics
		}
		for name, want := range lvl.m {
			if got := m[name].GetCount(); got != want {
				t.Errorf("%s %s = %d, want %d", lvl.name, name, got, want)
			}
		}
		if got := m[pm.UDPActiveFlows].GetGauge(); got != 2 {
			t.Errorf("%s active flows %d, want 2", lvl.name, got)
		}
	}
	r.Clear()
	f.End()
	wm = r.Snapshot()
	if wm.Proxy[pm.UDPDatagramsIn].GetCount() != 0 || wm.Proxy[pm.UDPActiveFlows].GetGauge() != 1 ||
		wm.Clusters["dns"].Backends[0].Metrics[pm.UDPActiveFlows].GetGauge() != 1 {
		t.Errorf("after clear and one end: %v", wm.Proxy)
	}
	var none *Registry
	none.FlowStart("x", "y").In(1) // metrics off: a nil registry records nothing
}
