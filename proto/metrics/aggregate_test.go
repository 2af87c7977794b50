package metrics

import (
	"slices"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

func count(v int64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: v}}
}

func gauge(v uint64) *command.FilteredMetrics {
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Gauge{Gauge: v}}
}

func hist(ds ...time.Duration) *command.FilteredMetrics {
	s := NewSketch()
	for _, d := range ds {
		s.Add(d)
	}
	return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Histogram{Histogram: s.Histogram()}}
}

// worker builds one worker's answer: requests n on the proxy and on
// clusters a (backends a1, a2) and b (backend b1).
func workerAnswer(n int64, up uint64) *command.WorkerMetrics {
	be := func(id string) *command.BackendMetrics {
		return &command.BackendMetrics{BackendId: proto.String(id), Metrics: map[string]*command.FilteredMetrics{
			Requests: count(n), BackendAvailable: gauge(up), ConnectionsPerBackend: gauge(2), BackendResponseTime: hist(time.Millisecond)}}
	}
	return &command.WorkerMetrics{
		Proxy: map[string]*command.FilteredMetrics{HTTPRequests: count(n), ClientConnections: gauge(3), RequestTime: hist(time.Millisecond, 3*time.Millisecond)},
		Clusters: map[string]*command.ClusterMetrics{
			"a": {Cluster: map[string]*command.FilteredMetrics{Requests: count(n)}, Backends: []*command.BackendMetrics{be("a1"), be("a2")}},
			"b": {Cluster: map[string]*command.FilteredMetrics{Requests: count(n)}, Backends: []*command.BackendMetrics{be("b1")}},
		},
	}
}

func backendIDs(cm *command.ClusterMetrics) []string {
	var ids []string
	for _, b := range cm.GetBackends() {
		ids = append(ids, b.GetBackendId())
	}
	return ids
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// The aggregate sums counters and gauges over workers (up/down by their
// maximum), merges sketches, and applies the query's options.
func TestAggregator(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      *command.QueryMetricsOptions
		proxy    []string // names in proxying
		clusters []string
		// clusterOwn: the clusters carry their own metrics (not only
		// their backends')
		clusterOwn bool
		backends   map[string][]string
		workers    int
	}{
		{name: "everything", opt: &command.QueryMetricsOptions{},
			proxy: []string{ClientConnections, HTTPRequests, RequestTime}, clusters: []string{"a", "b"}, clusterOwn: true,
			backends: map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}}},
		{name: "workers", opt: &command.QueryMetricsOptions{Workers: proto.Bool(true)},
			proxy: []string{ClientConnections, HTTPRequests, RequestTime}, clusters: []string{"a", "b"}, clusterOwn: true,
			backends: map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}}, workers: 2},
		{name: "no clusters", opt: &command.QueryMetricsOptions{NoClusters: proto.Bool(true)},
			proxy: []string{ClientConnections, HTTPRequests, RequestTime}},
		{name: "cluster ids", opt: &command.QueryMetricsOptions{ClusterIds: []string{"b", "nope"}},
			clusters: []string{"b"}, clusterOwn: true, backends: map[string][]string{"b": {"b1"}}},
		{name: "backend ids", opt: &command.QueryMetricsOptions{BackendIds: []string{"a2"}},
			clusters: []string{"a"}, backends: map[string][]string{"a": {"a2"}}},
		{name: "no clusters wins over ids", opt: &command.QueryMetricsOptions{NoClusters: proto.Bool(true), ClusterIds: []string{"a"}, BackendIds: []string{"b1"}},
			proxy: []string{ClientConnections, HTTPRequests, RequestTime}},
		{name: "cluster and backend ids", opt: &command.QueryMetricsOptions{ClusterIds: []string{"a"}, BackendIds: []string{"a1", "b1"}},
			clusters: []string{"a"}, clusterOwn: true, backends: map[string][]string{"a": {"a1"}}},
		{name: "metric names", opt: &command.QueryMetricsOptions{MetricNames: []string{HTTPRequests, BackendAvailable}},
			proxy: []string{HTTPRequests}, clusters: []string{"a", "b"}, backends: map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAggregator(tc.opt)
			if err := a.Add("0", workerAnswer(5, 0)); err != nil {
				t.Fatal(err)
			}
			if err := a.Add("1", workerAnswer(7, 1)); err != nil {
				t.Fatal(err)
			}
			am := a.Result(map[string]*command.FilteredMetrics{Workers: gauge(2)})
			if got := keys(am.GetProxying()); !slices.Equal(got, tc.proxy) {
				t.Errorf("proxying %v, want %v", got, tc.proxy)
			}
			if got := keys(am.GetClusters()); !slices.Equal(got, tc.clusters) {
				t.Errorf("clusters %v, want %v", got, tc.clusters)
			}
			for id, want := range tc.backends {
				if got := backendIDs(am.GetClusters()[id]); !slices.Equal(got, want) {
					t.Errorf("cluster %s backends %v, want %v", id, got, want)
				}
			}
			if len(am.GetMain()) > 0 && tc.proxy == nil {
				t.Errorf("main %v, want it only with the proxy-level metrics", am.GetMain())
			}
			for id, c := range am.GetClusters() {
				if (len(c.GetCluster()) > 0) != tc.clusterOwn {
					t.Errorf("cluster %s own metrics %v, want them: %v", id, c.GetCluster(), tc.clusterOwn)
				}
			}
			if len(am.GetWorkers()) != tc.workers {
				t.Errorf("%d workers, want %d", len(am.GetWorkers()), tc.workers)
			}
			if m := am.GetProxying()[HTTPRequests]; tc.proxy != nil && m.GetCount() != 12 {
				t.Errorf("requests %d, want 12", m.GetCount())
			}
			if g := am.GetProxying()[ClientConnections]; g != nil && g.GetGauge() != 6 {
				t.Errorf("client connections %d, want 6 (summed)", g.GetGauge())
			}
			if p := am.GetProxying()[RequestTime]; p != nil && (p.GetPercentiles().GetSamples() != 4 || p.GetPercentiles().GetP_100() < 2900) {
				t.Errorf("request time %v, want 4 samples up to 3 ms", p)
			}
			if c := am.GetClusters()["a"]; c != nil && len(c.GetBackends()) > 0 {
				if up := c.GetBackends()[0].GetMetrics()[BackendAvailable]; up.GetGauge() != 1 {
					t.Errorf("backend.available %d, want 1 (maximum over workers)", up.GetGauge())
				}
			}
			if tc.workers > 0 && am.GetWorkers()["1"].GetProxy()[HTTPRequests].GetCount() != 7 {
				t.Errorf("worker 1: %v", am.GetWorkers()["1"])
			}
		})
	}
}

// A worker whose metric changes type between answers is refused, named.
func TestAggregatorRefusesTypeClash(t *testing.T) {
	a := NewAggregator(nil)
	if err := a.Add("0", &command.WorkerMetrics{Proxy: map[string]*command.FilteredMetrics{HTTPRequests: count(1)}}); err != nil {
		t.Fatal(err)
	}
	err := a.Add("1", &command.WorkerMetrics{Proxy: map[string]*command.FilteredMetrics{HTTPRequests: gauge(1)}})
	if err == nil || err.Error() != `metric "http.requests": a gauge where a counter was` {
		t.Fatalf("err = %v", err)
	}
}
