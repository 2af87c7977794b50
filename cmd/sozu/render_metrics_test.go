package main

import (
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// A query naming clusters (or backends) with --workers is answered
// without proxy-level metrics, the workers' own included: each worker's
// clusters are still shown under that worker's name, not as unnamed
// blocks that read as more clusters of the merged answer.
func TestRenderMetricsWorkersByCluster(t *testing.T) {
	cnt := func(v int64) *command.FilteredMetrics {
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: v}}
	}
	worker := func(n int64) *command.WorkerMetrics {
		return &command.WorkerMetrics{
			Proxy: map[string]*command.FilteredMetrics{pm.HTTPRequests: cnt(n)},
			Clusters: map[string]*command.ClusterMetrics{"shop": {
				Cluster:  map[string]*command.FilteredMetrics{pm.Requests: cnt(n)},
				Backends: []*command.BackendMetrics{{BackendId: ptr("shop-0"), Metrics: map[string]*command.FilteredMetrics{pm.Requests: cnt(n)}}},
			}},
		}
	}
	for _, opt := range []*command.QueryMetricsOptions{
		{ClusterIds: []string{"shop"}, Workers: ptr(true)},
		{BackendIds: []string{"shop-0"}, Workers: ptr(true)},
	} {
		a := pm.NewAggregator(opt)
		for id, n := range map[string]int64{"0": 37, "1": 30} {
			if err := a.Add(id, worker(n)); err != nil {
				t.Fatal(err)
			}
		}
		am := a.Result(map[string]*command.FilteredMetrics{pm.ConfigurationClusters: {Inner: &command.FilteredMetrics_Gauge{Gauge: 3}}})
		var b strings.Builder
		renderMetrics(&b, am)
		out := b.String()
		for _, w := range []string{"worker 0\n", "worker 1\n"} {
			if !strings.Contains(out, w) {
				t.Errorf("%v: no %q heading:\n%s", opt, strings.TrimSpace(w), out)
			}
		}
		if i, j := strings.Index(out, "worker 0\n"), strings.Index(out, "  cluster shop\n"); i < 0 || j < i {
			t.Errorf("%v: worker 0's cluster not under its heading:\n%s", opt, out)
		}
	}
}

// TestRenderMetricsNoMatch: `metrics get --names nosuch` is answered with
// the clusters, each without a metric: they rendered as bare "cluster
// app" headings (and worker headings) over nothing. A query matching no
// metric says so.
func TestRenderMetricsNoMatch(t *testing.T) {
	cnt := func(v int64) *command.FilteredMetrics {
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: v}}
	}
	wm := &command.WorkerMetrics{
		Proxy: map[string]*command.FilteredMetrics{pm.HTTPRequests: cnt(3)},
		Clusters: map[string]*command.ClusterMetrics{"app": {
			Cluster:  map[string]*command.FilteredMetrics{pm.Requests: cnt(3)},
			Backends: []*command.BackendMetrics{{BackendId: ptr("app-0"), Metrics: map[string]*command.FilteredMetrics{pm.Requests: cnt(3)}}},
		}},
	}
	for _, opt := range []*command.QueryMetricsOptions{
		{MetricNames: []string{"nosuch"}},
		{MetricNames: []string{"nosuch"}, Workers: ptr(true)},
		{MetricNames: []string{"nosuch"}, ClusterIds: []string{"app"}, Workers: ptr(true)},
		{MetricNames: []string{"nosuch"}, BackendIds: []string{"app-0"}},
	} {
		a := pm.NewAggregator(opt)
		if err := a.Add("0", wm); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		renderMetrics(&b, a.Result(nil))
		if out := b.String(); out != "no metrics match the query (sozu metrics get --list lists the names)\n" {
			t.Errorf("%v rendered:\n%s", opt, out)
		}
	}
	// A cluster whose backends alone match keeps its heading.
	a := pm.NewAggregator(&command.QueryMetricsOptions{BackendIds: []string{"app-0"}})
	if err := a.Add("0", wm); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	renderMetrics(&b, a.Result(nil))
	if out := b.String(); !strings.Contains(out, "cluster app\n  backend app-0\n") {
		t.Errorf("a backend query rendered:\n%s", out)
	}
}
