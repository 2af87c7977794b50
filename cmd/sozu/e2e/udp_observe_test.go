package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// cliMetrics reads `sozu metrics get --json -k <cluster>`: the cluster's
// metric name → value (count or gauge), and each backend's.
func cliMetrics(t *testing.T, p *sozutest.Proxy, cluster string) (cl map[string]int64, backends map[string]map[string]int64) {
	t.Helper()
	out := p.MustCLI("metrics", "get", "--json", "-k", cluster)
	type value struct { // JSON numbers: 64-bit ones too (render_json.go)
		Count *int64  `json:"count"`
		Gauge *uint64 `json:"gauge"`
	}
	var doc struct {
		Content struct {
			Metrics struct {
				Clusters map[string]struct {
					Cluster  map[string]value `json:"cluster"`
					Backends []struct {
						BackendID string           `json:"backend_id"`
						Metrics   map[string]value `json:"metrics"`
					} `json:"backends"`
				} `json:"clusters"`
			} `json:"metrics"`
		} `json:"content"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("sozu metrics get --json: %v\n%s", err, out)
	}
	num := func(m map[string]value) map[string]int64 {
		r := map[string]int64{}
		for k, v := range m {
			switch {
			case v.Count != nil:
				r[k] = *v.Count
			case v.Gauge != nil:
				r[k] = int64(*v.Gauge)
			}
		}
		return r
	}
	c := doc.Content.Metrics.Clusters[cluster]
	backends = map[string]map[string]int64{}
	for _, b := range c.Backends {
		backends[b.BackendID] = num(b.Metrics)
	}
	return num(c.Cluster), backends
}

// TestUDPObservability runs sozu (two workers) with a UDP listener whose
// cluster has two echo backends, JSON access logs to a udp:// target in
// the test and a Prometheus endpoint: 16 clients each make one flow of 3
// datagrams (the flow ends after its 3 responses). Each flow gives one
// access record with its datagrams and bytes each way, and the metrics
// count the flows, datagrams and bytes per cluster and per backend, the
// same in `sozu metrics get --json`, in each worker's share (adding up)
// and in a Prometheus scrape.
func TestUDPObservability(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	a, b := startUDPEcho(t, "a"), startUDPEcho(t, "b")
	front := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	access := listenUDP(t)
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true
access_logs_target = "udp://%s"
access_logs_format = "json"

[metrics]
prometheus_address = %q
detail = "backend"

[[listeners]]
protocol = "udp"
address = %[4]q

[clusters.dns]
protocol = "tcp"
frontends = [ { address = %[4]q, tags = { svc = "resolver" } } ]
backends = [ { address = %[5]q, backend_id = "dns-a" }, { address = %[6]q, backend_id = "dns-b" } ]

[clusters.dns.udp]
responses = 3
affinity_key = "SOURCE_IP_PORT"
`, sock, access.addr(), prom, front, a.addr, b.addr)
	p := startProxy(t, dir, sock, cfg, prom)
	// The listener relays in some worker: wait for a reply (this flow
	// stays open, short of its responses; the baseline below counts it).
	ready := dialUDP(t, front)
	sozutest.WaitFor(t, 20*time.Second, "the UDP listener to relay", func() bool {
		_, ok := ready.ask("ready", 200*time.Millisecond, 1)
		return ok
	})
	sozutest.WaitFor(t, 10*time.Second, "the cluster's metrics", func() bool {
		cl, _ := cliMetrics(t, p, "dns")
		return cl[pm.Requests] > 0
	})
	cl0, be0 := cliMetrics(t, p, "dns")

	const clients, datagrams = 16, 3
	type flow struct {
		port           int
		bytesIn, bytes int
	}
	flows := make([]flow, clients)
	var wg sync.WaitGroup
	for i := range clients {
		c := dialUDP(t, front)
		wg.Go(func() {
			f := flow{port: int(c.local().Port())}
			for j := range datagrams {
				msg := fmt.Sprintf("client %02d datagram %d", i, j) // 20 bytes
				// One send each, no retry: a resent datagram would be a
				// fourth in the flow. Loopback does not lose them.
				rep, ok := c.ask(msg, 5*time.Second, 1)
				if !ok {
					t.Errorf("client %d datagram %d: no reply", i, j)
					return
				}
				f.bytesIn += len(msg)
				f.bytes += len(fmt.Sprintf("%s|%d|%s", rep.backend, rep.port, rep.body))
			}
			flows[i] = f
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// One JSON record per flow, with its counts.
	var recs []map[string]any
	sozutest.WaitFor(t, 10*time.Second, "an access record for each flow", func() bool {
		recs = recs[:0]
		for _, m := range access.find(`"transport":"udp"`) {
			var r map[string]any
			if err := json.Unmarshal([]byte(m), &r); err != nil {
				t.Fatalf("%v: %s", err, m)
			}
			recs = append(recs, r)
		}
		return len(recs) >= clients
	})
	byPort := map[float64][]map[string]any{}
	for _, r := range recs {
		port, _ := ecs(r, "source.port").(float64)
		byPort[port] = append(byPort[port], r)
	}
	for i, f := range flows {
		rs := byPort[float64(f.port)]
		if len(rs) != 1 {
			t.Errorf("client %d (port %d): %d access records, want 1", i, f.port, len(rs))
			continue
		}
		r := rs[0]
		want := map[string]any{"sozu.protocol": "UDP", "sozu.cluster_id": "dns", "sozu.listener": front, "labels.svc": "resolver",
			"sozu.datagrams_in": float64(datagrams), "sozu.datagrams_out": float64(datagrams), "event.reason": "responses",
			"sozu.bytes_in": float64(f.bytesIn), "sozu.bytes_out": float64(f.bytes), "source.ip": "127.0.0.1"}
		for k, v := range want {
			if got := ecs(r, k); got != v {
				t.Errorf("client %d: %s = %v, want %v", i, k, got, v)
			}
		}
		if id := ecs(r, "sozu.backend_id"); id != "dns-a" && id != "dns-b" {
			t.Errorf("client %d: backend_id %v", i, id)
		}
		if ecs(r, "destination.port") == nil || ecs(r, "trace.id") == nil || ecs(r, "@timestamp") == nil {
			t.Errorf("client %d: record without destination, trace id or timestamp: %v", i, r)
		}
	}

	// The metrics: the flows, datagrams and bytes, per cluster and per
	// backend, as the CLI shows them.
	var sumIn, sumOut int64
	for _, f := range flows {
		sumIn += int64(f.bytesIn)
		sumOut += int64(f.bytes)
	}
	var cl1 map[string]int64
	var be1 map[string]map[string]int64
	sozutest.WaitFor(t, 10*time.Second, "every flow ended in the metrics", func() bool {
		cl1, be1 = cliMetrics(t, p, "dns")
		return cl1[pm.UDPActiveFlows] == cl0[pm.UDPActiveFlows]
	})
	for name, want := range map[string]int64{pm.Requests: clients, pm.UDPDatagramsIn: clients * datagrams,
		pm.UDPDatagramsOut: clients * datagrams, pm.BytesIn: sumIn, pm.BytesOut: sumOut} {
		if got := cl1[name] - cl0[name]; got != want {
			t.Errorf("cluster %s grew by %d, want %d", name, got, want)
		}
		var backends int64
		for id, m := range be1 {
			backends += m[name] - be0[id][name]
		}
		if backends != want {
			t.Errorf("backends' %s grew by %d in all, want %d", name, backends, want)
		}
	}
	if len(be1) != 2 || be1["dns-a"][pm.Requests] == 0 || be1["dns-b"][pm.Requests] == 0 {
		t.Errorf("flows not on both backends: %v", be1)
	}

	// Each worker's share adds up to the aggregate, and both carried flows.
	am := queryMetrics(t, sock, &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(false), Workers: proto.Bool(true)})
	if len(am.GetWorkers()) != 2 {
		t.Fatalf("%d workers answered", len(am.GetWorkers()))
	}
	for _, name := range []string{pm.Requests, pm.UDPDatagramsIn, pm.UDPDatagramsOut, pm.BytesIn, pm.BytesOut} {
		var sum int64
		for id, w := range am.GetWorkers() {
			n := countOf(w.GetClusters()["dns"].GetCluster(), name)
			if name == pm.Requests && n == 0 {
				t.Errorf("worker %s carried no flow", id)
			}
			sum += n
		}
		if agg := countOf(am.GetClusters()["dns"].GetCluster(), name); sum != agg || agg != cl1[name] {
			t.Errorf("%s: workers add up to %d, aggregate %d, CLI %d", name, sum, agg, cl1[name])
		}
	}
	var in int64
	for _, w := range am.GetWorkers() {
		in += countOf(w.GetProxy(), pm.UDPDatagramsIn)
	}
	if agg := countOf(am.GetProxying(), pm.UDPDatagramsIn); in != agg || agg != cl1[pm.UDPDatagramsIn] {
		t.Errorf("proxy udp.datagrams.in: workers %d, aggregate %d, cluster %d", in, agg, cl1[pm.UDPDatagramsIn])
	}

	// A datagram over max_rx_datagram_size (1500 by default) is dropped,
	// and counted by cause.
	if _, err := dialUDP(t, front).pc.Write(make([]byte, 2000)); err != nil {
		t.Fatal(err)
	}
	sozutest.WaitFor(t, 10*time.Second, "the oversized datagram counted", func() bool {
		am = queryMetrics(t, sock, nil)
		return countOf(am.GetProxying(), pm.UDPDroppedTruncated) == 1
	})
	if n := countOf(am.GetProxying(), pm.UDPDropped); n != 1 {
		t.Errorf("udp.datagrams.dropped = %d, want 1", n)
	}

	// A Prometheus scrape has them too, with the same values.
	resp, err := http.Get("http://" + prom + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	value := func(family string, labels ...string) (float64, bool) {
		for _, m := range fams[family].GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(got)
			if strings.Join(got, ",") == strings.Join(labels, ",") {
				if c := m.GetCounter(); c != nil {
					return c.GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		family string
		labels []string
		want   int64
	}{
		{"sozu_udp_datagrams_in_total", nil, countOf(am.GetProxying(), pm.UDPDatagramsIn)},
		{"sozu_udp_bytes_out_total", nil, countOf(am.GetProxying(), pm.UDPBytesOut)},
		{"sozu_udp_flows_created_total", nil, countOf(am.GetProxying(), pm.UDPFlowsCreated)},
		{"sozu_udp_active_flows", nil, int64(am.GetProxying()[pm.UDPActiveFlows].GetGauge())},
		{"sozu_udp_datagrams_dropped_total", nil, 1},
		{"sozu_udp_datagrams_dropped_truncated_total", nil, 1},
		{"sozu_cluster_requests_total", []string{"cluster_id=dns"}, cl1[pm.Requests]},
		{"sozu_cluster_udp_datagrams_in_total", []string{"cluster_id=dns"}, cl1[pm.UDPDatagramsIn]},
		{"sozu_cluster_bytes_out_total", []string{"cluster_id=dns"}, cl1[pm.BytesOut]},
		{"sozu_backend_udp_datagrams_out_total", []string{"backend_id=dns-a", "cluster_id=dns"}, be1["dns-a"][pm.UDPDatagramsOut]},
		{"sozu_backend_udp_active_flows", []string{"backend_id=dns-b", "cluster_id=dns"}, be1["dns-b"][pm.UDPActiveFlows]},
	} {
		got, ok := value(c.family, c.labels...)
		if !ok || got != float64(c.want) {
			t.Errorf("scrape: %s%v = %v (present %v), want %d", c.family, c.labels, got, ok, c.want)
		}
	}
}
