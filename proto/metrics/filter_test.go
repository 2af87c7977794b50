package metrics

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// A read-only client may send query_metrics with filters as large as a
// frame holds (2 MB: some 100,000 names each of metric_names, cluster_ids
// and backend_ids). Merging 2 workers' answers over 5,000 clusters with
// such filters must take time linear in the answers and filters, not
// their product (which pinned the supervisor's CPU for minutes).
func TestHugeFiltersStayLinear(t *testing.T) {
	const nfilter, nclusters = 100_000, 5_000
	opt := &command.QueryMetricsOptions{Workers: proto.Bool(true)}
	for i := range nfilter {
		opt.MetricNames = append(opt.MetricNames, fmt.Sprintf("m%d", i))
		opt.ClusterIds = append(opt.ClusterIds, fmt.Sprintf("c%d", i))
		opt.BackendIds = append(opt.BackendIds, fmt.Sprintf("c%d-b", i))
	}
	opt.MetricNames = append(opt.MetricNames, Requests) // the last of the list
	wm := &command.WorkerMetrics{Proxy: map[string]*command.FilteredMetrics{HTTPRequests: count(1)},
		Clusters: map[string]*command.ClusterMetrics{}}
	for i := range nclusters {
		id := fmt.Sprintf("c%d", nfilter-1-i) // near the end of the filter
		wm.Clusters[id] = &command.ClusterMetrics{
			Cluster: map[string]*command.FilteredMetrics{Requests: count(1), ConnectionsPerBackend: gauge(1)},
			Backends: []*command.BackendMetrics{{BackendId: proto.String(id + "-b"),
				Metrics: map[string]*command.FilteredMetrics{Requests: count(1), BackendUp: gauge(1)}}},
		}
	}
	done := make(chan *command.AggregatedMetrics, 1)
	go func() {
		a := NewAggregator(opt)
		for _, w := range []string{"0", "1"} {
			if err := a.Add(w, wm); err != nil {
				t.Error(err)
			}
		}
		done <- a.Result(nil)
	}()
	select {
	case am := <-done:
		if n := len(am.GetClusters()); n != nclusters {
			t.Errorf("%d clusters in the aggregate, want %d", n, nclusters)
		}
		if c := am.GetClusters()[fmt.Sprintf("c%d", nfilter-1)]; c.GetCluster()[Requests].GetCount() != 2 || len(c.GetBackends()) != 1 {
			t.Errorf("cluster c%d: %v", nfilter-1, c)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("merging 2 answers of %d clusters under filters of %d names took over 10 s", nclusters, nfilter)
	}
}
