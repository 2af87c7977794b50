package export

import (
	"bytes"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

func count(v int64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: v}}
}

func gauge(v uint64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Gauge{Gauge: v}}
}

func sketch(ds ...time.Duration) *command.FilteredMetrics {
	s := pm.NewSketch()
	for _, d := range ds {
		s.Add(d)
	}
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Histogram{Histogram: s.Histogram()}}
}

func oneWorker(requests int64, times ...time.Duration) map[string]*command.WorkerMetrics {
	return map[string]*command.WorkerMetrics{"0": {
		Proxy: map[string]*command.FilteredMetrics{pm.HTTPRequests: count(requests), pm.ClientConnections: gauge(2)},
		Clusters: map[string]*command.ClusterMetrics{"shop": {
			Cluster:  map[string]*command.FilteredMetrics{pm.Requests: count(requests), pm.BackendResponseTime: sketch(times...)},
			Backends: []*command.BackendMetrics{{BackendId: proto.String("shop-0"), Metrics: map[string]*command.FilteredMetrics{pm.Requests: count(requests)}}},
		}},
	}}
}

func lines(ds [][]byte) []string {
	var out []string
	for _, d := range ds {
		out = append(out, strings.Split(string(d), "\n")...)
	}
	return out
}

// Upstream's keys, plain and tagged, at each level; counters as deltas
// between flushes; latency samples once each, with a sample rate for a
// bin holding several.
func TestStatsdLines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   StatsdOptions
		first []string
	}{
		{"plain backend level", StatsdOptions{Prefix: "sozu", Level: LevelBackend}, []string{
			"sozu.WRK-00.client.connections:2|g",
			"sozu.WRK-00.http.requests:3|c",
			"sozu.WRK-00.cluster.shop.backend_response_time:1.998818|ms|@0.5",
			"sozu.WRK-00.cluster.shop.backend_response_time:9.933253|ms",
			"sozu.WRK-00.cluster.shop.requests:3|c",
			"sozu.WRK-00.cluster.shop.backend.shop-0.requests:3|c",
		}},
		{"tagged cluster level", StatsdOptions{Prefix: "p", Tagged: true, Version: "v1", Level: LevelCluster}, []string{
			"p.client.connections,origin=WRK-00,version=v1:2|g",
			"p.http.requests,origin=WRK-00,version=v1:3|c",
			"p.cluster.backend_response_time,origin=WRK-00,version=v1,cluster_id=shop:1.998818|ms|@0.5",
			"p.cluster.backend_response_time,origin=WRK-00,version=v1,cluster_id=shop:9.933253|ms",
			"p.cluster.requests,origin=WRK-00,version=v1,cluster_id=shop:3|c",
		}},
		{"proxy level (disable_cluster_metrics)", StatsdOptions{Level: LevelProxy}, []string{
			"sozu.WRK-00.client.connections:2|g",
			"sozu.WRK-00.http.requests:3|c",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStatsd(tc.opt)
			got := lines(s.Flush(nil, oneWorker(3, 2*time.Millisecond, 2*time.Millisecond, 10*time.Millisecond)))
			if !slices.Equal(got, tc.first) {
				t.Errorf("first flush:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.first, "\n"))
			}
			// Nothing new: only the gauges.
			got = lines(s.Flush(nil, oneWorker(3, 2*time.Millisecond, 2*time.Millisecond, 10*time.Millisecond)))
			if len(got) != 1 || !strings.Contains(got[0], "client.connections") {
				t.Errorf("second flush, nothing new: %q", got)
			}
			// Two more requests, one more sample.
			got = lines(s.Flush(nil, oneWorker(5, 2*time.Millisecond, 2*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond)))
			var inc, samples int
			for _, l := range got {
				if strings.Contains(l, "http.requests") && strings.HasSuffix(l, ":2|c") {
					inc++
				}
				if strings.Contains(l, "|ms") {
					samples++
					if !strings.Contains(l, ":9.933253|ms") || strings.Contains(l, "@") {
						t.Errorf("new sample line %q", l)
					}
				}
			}
			if inc != 1 || (tc.opt.Level >= LevelCluster && samples != 1) {
				t.Errorf("third flush: %q", got)
			}
			// A clear (counters and sketches restart): sent again whole.
			got = lines(s.Flush(nil, oneWorker(1, 2*time.Millisecond)))
			if !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "http.requests") && strings.HasSuffix(l, ":1|c") }) {
				t.Errorf("after a clear: %q", got)
			}
		})
	}
}

// The supervisor's own metrics go under upstream's main origin, MAIN,
// plain and tagged, before the workers'.
func TestStatsdMainOrigin(t *testing.T) {
	main := map[string]*command.FilteredMetrics{pm.ConfigurationClusters: gauge(2), pm.StatsdSent: count(4)}
	for _, tc := range []struct {
		opt  StatsdOptions
		want []string
	}{
		{StatsdOptions{Level: LevelProxy}, []string{
			"sozu.MAIN.configuration.clusters:2|g",
			"sozu.MAIN.statsd.datagrams:4|c",
			"sozu.WRK-00.client.connections:2|g",
			"sozu.WRK-00.http.requests:1|c",
		}},
		{StatsdOptions{Tagged: true, Version: "v1", Level: LevelProxy}, []string{
			"sozu.configuration.clusters,origin=MAIN,version=v1:2|g",
			"sozu.statsd.datagrams,origin=MAIN,version=v1:4|c",
			"sozu.client.connections,origin=WRK-00,version=v1:2|g",
			"sozu.http.requests,origin=WRK-00,version=v1:1|c",
		}},
	} {
		if got := lines(NewStatsd(tc.opt).Flush(main, oneWorker(1))); !slices.Equal(got, tc.want) {
			t.Errorf("%+v:\n%s\nwant:\n%s", tc.opt, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

// Ids cannot forge lines: separators become '_'; datagrams stay under
// MaxDatagram.
func TestStatsdHostileIDsAndPacking(t *testing.T) {
	w := map[string]*command.WorkerMetrics{"0": {Clusters: map[string]*command.ClusterMetrics{}}}
	for i := range 200 {
		id := strings.Repeat("x", i%50) + "a:1|c\nevil"
		w["0"].Clusters[id+string(rune('A'+i%26))+strings.Repeat("y", i)] = &command.ClusterMetrics{Cluster: map[string]*command.FilteredMetrics{pm.Requests: count(1)}}
	}
	ds := NewStatsd(StatsdOptions{Level: LevelCluster}).Flush(nil, w)
	n := 0
	for _, d := range ds {
		if len(d) > MaxDatagram {
			t.Errorf("datagram of %d bytes", len(d))
		}
		for _, l := range strings.Split(string(d), "\n") {
			n++
			if strings.Count(l, ":") != 1 || strings.Count(l, "|") != 1 {
				t.Errorf("forged line %q", l)
			}
		}
	}
	if n != 200 {
		t.Errorf("%d lines, want 200", n)
	}
}

// TestStatsdDottedIDsStayInPlace: a plain key is a dotted path
// (<prefix>.<origin>.cluster.<id>.backend.<id>.<name>), so an id's '.'
// would move its metrics elsewhere in the tree: a cluster
// "shop.backend.db" would post as backend db of cluster shop, and one
// "shop.requests" as a metric of cluster shop. There ids have '_' for
// '.'; tagged keys, where an id is a tag's value, keep it.
func TestStatsdDottedIDsStayInPlace(t *testing.T) {
	w := map[string]*command.WorkerMetrics{"0": {Clusters: map[string]*command.ClusterMetrics{
		"shop.backend.db": {Cluster: map[string]*command.FilteredMetrics{pm.Requests: count(7)}},
		"shop":            {Backends: []*command.BackendMetrics{{BackendId: proto.String("db.x"), Metrics: map[string]*command.FilteredMetrics{pm.Requests: count(1)}}}},
	}}}
	got := lines(NewStatsd(StatsdOptions{Level: LevelBackend}).Flush(nil, w))
	want := []string{"sozu.WRK-00.cluster.shop.backend.db_x.requests:1|c", "sozu.WRK-00.cluster.shop_backend_db.requests:7|c"}
	if !slices.Equal(got, want) {
		t.Errorf("plain:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = lines(NewStatsd(StatsdOptions{Tagged: true, Version: "v1", Level: LevelBackend}).Flush(nil, w))
	want = []string{"sozu.backend.requests,origin=WRK-00,version=v1,cluster_id=shop,backend_id=db.x:1|c",
		"sozu.cluster.requests,origin=WRK-00,version=v1,cluster_id=shop.backend.db:7|c"}
	if !slices.Equal(got, want) {
		t.Errorf("tagged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The exposition parses with Prometheus' own parser: families, types,
// labels, quantiles in seconds; a hostile cluster id is a label value,
// escaped.
func TestPrometheusParses(t *testing.T) {
	agg := pm.NewAggregator(nil)
	w := oneWorker(3, 2*time.Millisecond, 2*time.Millisecond, 10*time.Millisecond)
	w["0"].Clusters["evil\"}\n# TYPE x counter"] = &command.ClusterMetrics{Cluster: map[string]*command.FilteredMetrics{pm.Requests: count(7)}}
	if err := agg.Add("0", w["0"]); err != nil {
		t.Fatal(err)
	}
	am := agg.Result(map[string]*command.FilteredMetrics{pm.ConfigurationClusters: gauge(2)})
	var b bytes.Buffer
	if err := WritePrometheus(&b, am, LevelBackend); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if f := fams["sozu_http_requests_total"]; f == nil || f.GetType().String() != "COUNTER" || f.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Errorf("sozu_http_requests_total: %v", f)
	}
	if f := fams["sozu_configuration_clusters"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() != 2 {
		t.Errorf("sozu_configuration_clusters: %v", f)
	}
	f := fams["sozu_cluster_requests_total"]
	if f == nil || len(f.GetMetric()) != 2 {
		t.Fatalf("sozu_cluster_requests_total: %v\n%s", f, b.String())
	}
	ids := map[string]float64{}
	for _, m := range f.GetMetric() {
		ids[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	if ids["shop"] != 3 || ids["evil\"}\n# TYPE x counter"] != 7 {
		t.Errorf("cluster samples by id: %v", ids)
	}
	if f := fams["sozu_backend_requests_total"]; f == nil || len(f.GetMetric()[0].GetLabel()) != 2 {
		t.Errorf("sozu_backend_requests_total: %v", f)
	}
	s := fams["sozu_cluster_backend_response_time_seconds"]
	if s == nil || s.GetType().String() != "SUMMARY" {
		t.Fatalf("summary: %v", s)
	}
	sum := s.GetMetric()[0].GetSummary()
	if sum.GetSampleCount() != 3 || len(sum.GetQuantile()) != 5 {
		t.Errorf("summary: %v", sum)
	}
	if q := sum.GetQuantile()[0]; q.GetQuantile() != 0.5 || q.GetValue() < 0.00198 || q.GetValue() > 0.00202 {
		t.Errorf("median %v s, want 0.002 ± 1 %%", q)
	}
	if fams["x"] != nil {
		t.Error("a cluster id injected a family")
	}
	if strings.Contains(b.String(), "µs") {
		t.Error("a HELP line of a summary in seconds says µs")
	}

	// A counter whose upstream name ends in "total" takes one suffix; a
	// latency without samples has NaN quantiles, not 0.
	w2 := map[string]*command.WorkerMetrics{"0": {Proxy: map[string]*command.FilteredMetrics{
		pm.AcceptedConnections: count(5), pm.RequestTime: sketch()}}}
	agg2 := pm.NewAggregator(nil)
	if err := agg2.Add("0", w2["0"]); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	WritePrometheus(&b, agg2.Result(nil), LevelProxy)
	fams, err = p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if f := fams["sozu_listener_accepted_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() != 5 || fams["sozu_listener_accepted_total_total"] != nil {
		t.Errorf("listener.accepted.total: %v\n%s", f, b.String())
	}
	if f := fams["sozu_request_time_seconds"]; f == nil || !math.IsNaN(f.GetMetric()[0].GetSummary().GetQuantile()[0].GetValue()) {
		t.Errorf("empty summary: %v\n%s", f, b.String())
	}

	// Proxy level only: no cluster family.
	b.Reset()
	WritePrometheus(&b, am, LevelProxy)
	fams, err = p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil || fams["sozu_cluster_requests_total"] != nil || fams["sozu_http_requests_total"] == nil {
		t.Errorf("proxy level: %v %v", err, slices.Collect(func(yield func(string) bool) {
			for k := range fams {
				yield(k)
			}
		}))
	}
}

// TestStatsdSilentWorkerNotCountedTwice: a worker that misses one flush
// (it did not answer within worker_timeout) and answers the next must
// send what is new since its last answer, not its whole count since it
// started again: statsd adds the |c lines up, so 3 requests then 2 more
// must add up to 5, and 3 samples then 1 more to 4. A worker gone from the
// table (neither answering nor silent) is forgotten.
func TestStatsdSilentWorkerNotCountedTwice(t *testing.T) {
	s := NewStatsd(StatsdOptions{Level: LevelCluster})
	sum := func(ds [][]byte) (reqs int64, samples float64) {
		for _, l := range lines(ds) {
			key, v, _ := strings.Cut(l, ":")
			switch {
			case key == "sozu.WRK-00.http.requests":
				n, _ := strconv.ParseInt(strings.TrimSuffix(v, "|c"), 10, 64)
				reqs += n
			case strings.HasSuffix(key, ".backend_response_time"):
				rate := 1.0
				if _, r, ok := strings.Cut(v, "|@"); ok {
					rate, _ = strconv.ParseFloat(r, 64)
				}
				samples += 1 / rate
			}
		}
		return reqs, samples
	}
	ms2, ms10 := 2*time.Millisecond, 10*time.Millisecond
	r1, s1 := sum(s.Flush(nil, oneWorker(3, ms2, ms2, ms10)))
	r2, s2 := sum(s.Flush(nil, map[string]*command.WorkerMetrics{}, "0")) // worker 0 silent
	r3, s3 := sum(s.Flush(nil, oneWorker(5, ms2, ms2, ms10, ms10)))
	if r1+r2+r3 != 5 || math.Round(s1+s2+s3) != 4 {
		t.Errorf("statsd adds up %d requests and %v samples over the flushes (%d+%d+%d, %v+%v+%v), want 5 and 4",
			r1+r2+r3, s1+s2+s3, r1, r2, r3, s1, s2, s3)
	}
	// Gone (not silent): forgotten; a worker with that id later starts
	// from nothing.
	s.Flush(nil, map[string]*command.WorkerMetrics{})
	if r, _ := sum(s.Flush(nil, oneWorker(1))); r != 1 {
		t.Errorf("after the worker left: %d requests, want 1", r)
	}
	if len(s.prev) != 1 || s.prev["WRK-00"] == nil {
		t.Errorf("remembered origins %v, want WRK-00 only", slices.Collect(maps.Keys(s.prev)))
	}
}

// TestStatsdBaseline: a worker inherited in a hot upgrade had its counts
// so far sent by the previous supervisor; taken as a baseline, its next
// flush sends what is new since, not again everything since it started.
func TestStatsdBaseline(t *testing.T) {
	s := NewStatsd(StatsdOptions{Level: LevelBackend})
	ms := time.Millisecond
	s.Baseline("0", oneWorker(3, ms, ms)["0"])
	got := lines(s.Flush(nil, oneWorker(5, ms, ms, 4*ms)))
	var counters, samples []string
	for _, l := range got {
		switch {
		case strings.HasSuffix(l, "|c"):
			counters = append(counters, l)
		case strings.Contains(l, "|ms"):
			samples = append(samples, l)
		}
	}
	want := []string{"sozu.WRK-00.http.requests:2|c", "sozu.WRK-00.cluster.shop.requests:2|c", "sozu.WRK-00.cluster.shop.backend.shop-0.requests:2|c"}
	if !slices.Equal(counters, want) || len(samples) != 1 || strings.Contains(samples[0], "@") {
		t.Errorf("after a baseline of 3 requests and 2 samples, 5 and 3:\n%s\nwant counters:\n%s\nand one sample", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
