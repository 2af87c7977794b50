package udp

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/accesslog/accesslogtest"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/metrics"
)

func field(m map[string]any, path ...string) any { return accesslogtest.Field(m, path...) }

func count(m map[string]*command.FilteredMetrics, name string) int64 { return m[name].GetCount() }

// TestFlowAccessRecordAndMetrics: each ended flow gives one access record
// (UDP, client and backend, datagrams and bytes each way, end reason,
// tags), and the metrics count its datagrams and bytes at the proxy,
// cluster and backend levels as they go, and its live flow while it
// lives.
func TestFlowAccessRecordAndMetrics(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	cl.Responses = 3
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	m := metrics.New()
	ends := make(chan FlowEnd, 10)
	_, addr := startServer(t, &Listener{Cluster: cl, Tags: accesslog.NewTags(map[string]string{"svc": "dns"})},
		Options{Access: al, Metrics: m, OnFlowEnd: func(e FlowEnd) { ends <- e }})
	c := dialClient(t, addr)
	for _, q := range []string{"q1", "q22", "q333"} {
		if r := c.ask(q, 2*time.Second); r != "a|"+q {
			t.Fatalf("%s: %q", q, r)
		}
	}
	select {
	case <-ends:
	case <-time.After(5 * time.Second):
		t.Fatal("the flow did not end after its responses")
	}
	recs := sink.JSON(t, 1)
	if len(recs) != 1 {
		t.Fatalf("%d records for one flow: %v", len(recs), recs)
	}
	r := recs[0]
	// Payload 2+3+4 bytes in; replies "a|" + payload out.
	want := map[string]any{
		"network.transport": "udp", "sozu.protocol": "UDP", "sozu.datagrams_in": float64(3), "sozu.datagrams_out": float64(3),
		"sozu.bytes_in": float64(9), "sozu.bytes_out": float64(15), "event.reason": "responses", "sozu.cluster_id": "c",
		"sozu.backend_id": "a", "labels.svc": "dns", "source.port": float64(c.pc.LocalAddr().(*net.UDPAddr).Port),
		"sozu.listener": addr.String(), "network.packets": float64(6), "network.bytes": float64(24),
	}
	for k, v := range want {
		if got := field(r, strings.Split(k, ".")...); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if field(r, "destination", "port") == nil || field(r, "trace", "id") == nil {
		t.Errorf("record without destination or trace id: %v", r)
	}

	wm := m.Snapshot()
	p := wm.Proxy
	for name, want := range map[string]int64{pm.UDPDatagramsIn: 3, pm.UDPDatagramsOut: 3, pm.UDPBytesIn: 9, pm.UDPBytesOut: 15, pm.UDPFlowsCreated: 1} {
		if got := count(p, name); got != want {
			t.Errorf("proxy %s = %d, want %d", name, got, want)
		}
	}
	if g := p[pm.UDPActiveFlows].GetGauge(); g != 0 {
		t.Errorf("active flows after the end: %d", g)
	}
	cm := wm.Clusters["c"]
	if cm == nil || len(cm.Backends) != 1 {
		t.Fatalf("cluster metrics %v", cm)
	}
	for _, lvl := range []map[string]*command.FilteredMetrics{cm.Cluster, cm.Backends[0].Metrics} {
		for name, want := range map[string]int64{pm.Requests: 1, pm.UDPDatagramsIn: 3, pm.UDPDatagramsOut: 3, pm.BytesIn: 9, pm.BytesOut: 15} {
			if got := count(lvl, name); got != want {
				t.Errorf("%s = %d, want %d", name, got, want)
			}
		}
	}
}

// TestActiveFlowsGauge: a live flow shows in the gauges of the three
// levels, and leaves them when it ends.
func TestActiveFlowsGauge(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	m := metrics.New()
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{Metrics: m})
	for i := range 2 {
		if r := dialClient(t, addr).ask("x", 2*time.Second); r != "a|x" {
			t.Fatalf("client %d: %q", i, r)
		}
	}
	wm := m.Snapshot()
	if p, c, b := wm.Proxy[pm.UDPActiveFlows].GetGauge(), wm.Clusters["c"].Cluster[pm.UDPActiveFlows].GetGauge(),
		wm.Clusters["c"].Backends[0].Metrics[pm.UDPActiveFlows].GetGauge(); p != 2 || c != 2 || b != 2 {
		t.Errorf("active flows: proxy %d, cluster %d, backend %d; want 2", p, c, b)
	}
	srv.Close()
	if g := m.Snapshot().Proxy[pm.UDPActiveFlows].GetGauge(); g != 0 {
		t.Errorf("active flows after Close: %d", g)
	}
}

// TestRelayAllocatesNothing: relaying a datagram of a live flow, with
// metrics on, allocates nothing (the hot path's contract). AllocsPerRun
// counts every goroutine's allocations, so the backend is muted first:
// its replies (and the server's relay of them) would be counted too.
func TestRelayAllocatesNothing(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	echo := startEcho(t, "a")
	cl := cluster(t, reg, echo)
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{Metrics: metrics.New()})
	c := dialClient(t, addr)
	if r := c.ask("x", 2*time.Second); r != "a|x" {
		t.Fatalf("%q", r)
	}
	echo.mute.Store(true)
	client := c.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	cfg := srv.Config()
	payload := []byte("datagram")
	scratch := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(200, func() { scratch = srv.relay(cfg, client, payload, scratch) }); n != 0 {
		t.Errorf("%v allocations per datagram", n)
	}
}
