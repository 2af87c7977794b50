package metrics

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// value accumulates one metric over workers.
type value struct {
	kind   Kind
	count  int64
	gauge  uint64
	sketch *Sketch
}

func (v *value) add(name string, m *command.FilteredMetrics) error {
	switch in := m.GetInner().(type) {
	case *command.FilteredMetrics_Count:
		if v.kind != 0 && v.kind != Counter {
			return fmt.Errorf("a counter where a %v was", v.kind)
		}
		v.kind = Counter
		v.count += in.Count
	case *command.FilteredMetrics_Gauge:
		if v.kind != 0 && v.kind != Gauge {
			return fmt.Errorf("a gauge where a %v was", v.kind)
		}
		v.kind = Gauge
		if MaxOverWorkers(name) {
			v.gauge = max(v.gauge, in.Gauge)
		} else {
			v.gauge += in.Gauge
		}
	case *command.FilteredMetrics_Histogram:
		if v.kind != 0 && v.kind != Time {
			return fmt.Errorf("a histogram where a %v was", v.kind)
		}
		v.kind = Time
		if v.sketch == nil {
			v.sketch = NewSketch()
		}
		return v.sketch.Merge(in.Histogram)
	default:
		return fmt.Errorf("unexpected metric type %T", m.GetInner())
	}
	return nil
}

func (v *value) filtered() *command.FilteredMetrics {
	switch v.kind {
	case Counter:
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Count{Count: v.count}}
	case Gauge:
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Gauge{Gauge: v.gauge}}
	case Time:
		return &command.FilteredMetrics{Inner: &command.FilteredMetrics_Percentiles{Percentiles: v.sketch.Percentiles()}}
	}
	return nil
}

type values map[string]*value

func (vs values) add(sel func(string) bool, in map[string]*command.FilteredMetrics) error {
	for name, m := range in {
		if !sel(name) {
			continue
		}
		v := vs[name]
		if v == nil {
			v = &value{}
			vs[name] = v
		}
		if err := v.add(name, m); err != nil {
			return fmt.Errorf("metric %q: %w", name, err)
		}
	}
	return nil
}

func (vs values) filtered() map[string]*command.FilteredMetrics {
	if len(vs) == 0 {
		return nil
	}
	out := make(map[string]*command.FilteredMetrics, len(vs))
	for name, v := range vs {
		if f := v.filtered(); f != nil {
			out[name] = f
		}
	}
	return out
}

type cluster struct {
	metrics  values
	backends map[string]values
}

// Aggregator merges the workers' answers to query_metrics into one
// AggregatedMetrics, applying the query's options. It is not safe for
// concurrent use.
type Aggregator struct {
	opt      *command.QueryMetricsOptions
	want     *filter
	proxy    values
	clusters map[string]*cluster
	workers  map[string]*command.WorkerMetrics
}

// NewAggregator returns an aggregator for a query with options opt (nil
// for none).
func NewAggregator(opt *command.QueryMetricsOptions) *Aggregator {
	if opt == nil {
		opt = &command.QueryMetricsOptions{}
	}
	return newAggregator(opt, newFilter(opt))
}

func newAggregator(opt *command.QueryMetricsOptions, want *filter) *Aggregator {
	return &Aggregator{opt: opt, want: want, proxy: values{}, clusters: map[string]*cluster{}, workers: map[string]*command.WorkerMetrics{}}
}

// filter holds a query's name and id lists as sets: a client may send
// 100,000 of each in a frame, and every metric of every answer is looked
// up in them.
type filter struct {
	names, clusters, backends map[string]struct{} // nil: no filter
}

func newFilter(opt *command.QueryMetricsOptions) *filter {
	set := func(l []string) map[string]struct{} {
		if len(l) == 0 {
			return nil
		}
		m := make(map[string]struct{}, len(l))
		for _, s := range l {
			m[s] = struct{}{}
		}
		return m
	}
	return &filter{names: set(opt.GetMetricNames()), clusters: set(opt.GetClusterIds()), backends: set(opt.GetBackendIds())}
}

func in(set map[string]struct{}, s string) bool {
	_, ok := set[s]
	return set == nil || ok
}

func (a *Aggregator) wantName(name string) bool { return in(a.want.names, name) }

func (a *Aggregator) wantCluster(id string) bool {
	return !a.opt.GetNoClusters() && in(a.want.clusters, id)
}

func (a *Aggregator) wantBackend(id string) bool { return in(a.want.backends, id) }

// byID reports whether the query names clusters or backends: as upstream,
// its answer then holds only those, without the proxy-level (and main)
// metrics. no_clusters comes first, as upstream reads it: the proxy-level
// metrics alone, whatever ids are named.
func (a *Aggregator) byID() bool {
	return !a.opt.GetNoClusters() && (a.want.clusters != nil || a.want.backends != nil)
}

// byBackend reports whether the query names backends and no cluster: as
// upstream, its answer holds the clusters holding them with only those
// backends' metrics, not the clusters' own.
func (a *Aggregator) byBackend() bool { return a.want.clusters == nil && a.want.backends != nil }

// Add merges the answer of the worker named worker. On error (a metric
// whose type differs between workers, a malformed histogram) the
// aggregator may hold part of the answer; the caller reports the worker.
func (a *Aggregator) Add(worker string, wm *command.WorkerMetrics) error {
	one := newAggregator(a.opt, a.want)
	if err := one.merge(wm); err != nil {
		return err
	}
	if err := a.merge(wm); err != nil {
		return err
	}
	if a.opt.GetWorkers() {
		a.workers[worker] = &command.WorkerMetrics{Proxy: one.proxy.filtered(), Clusters: one.clusterMetrics()}
	}
	return nil
}

func (a *Aggregator) merge(wm *command.WorkerMetrics) error {
	if !a.byID() {
		if err := a.proxy.add(a.wantName, wm.GetProxy()); err != nil {
			return err
		}
	}
	for id, cm := range wm.GetClusters() {
		if !a.wantCluster(id) {
			continue
		}
		var keep []*command.BackendMetrics
		for _, b := range cm.GetBackends() {
			if a.wantBackend(b.GetBackendId()) {
				keep = append(keep, b)
			}
		}
		if len(a.opt.GetBackendIds()) > 0 && len(keep) == 0 {
			continue // a backend filter shows only the clusters holding one of them
		}
		c := a.clusters[id]
		if c == nil {
			c = &cluster{metrics: values{}, backends: map[string]values{}}
			a.clusters[id] = c
		}
		if !a.byBackend() {
			if err := c.metrics.add(a.wantName, cm.GetCluster()); err != nil {
				return fmt.Errorf("cluster %q: %w", id, err)
			}
		}
		for _, b := range keep {
			vs := c.backends[b.GetBackendId()]
			if vs == nil {
				vs = values{}
				c.backends[b.GetBackendId()] = vs
			}
			if err := vs.add(a.wantName, b.GetMetrics()); err != nil {
				return fmt.Errorf("cluster %q backend %q: %w", id, b.GetBackendId(), err)
			}
		}
	}
	return nil
}

func (a *Aggregator) clusterMetrics() map[string]*command.ClusterMetrics {
	if len(a.clusters) == 0 {
		return nil
	}
	out := make(map[string]*command.ClusterMetrics, len(a.clusters))
	for id, c := range a.clusters {
		cm := &command.ClusterMetrics{Cluster: c.metrics.filtered()}
		ids := make([]string, 0, len(c.backends))
		for b := range c.backends {
			ids = append(ids, b)
		}
		sort.Strings(ids)
		for _, b := range ids {
			cm.Backends = append(cm.Backends, &command.BackendMetrics{BackendId: proto.String(b), Metrics: c.backends[b].filtered()})
		}
		out[id] = cm
	}
	return out
}

// Result returns the aggregate: proxying is the proxy-level metrics summed
// over workers, clusters the cluster and backend metrics merged over
// workers (backends sorted by id), workers each worker's own when the
// query asked for them, main the supervisor's own (given by the caller).
// A query naming clusters or backends gets neither proxying nor main, as
// upstream answers it.
func (a *Aggregator) Result(main map[string]*command.FilteredMetrics) *command.AggregatedMetrics {
	out := &command.AggregatedMetrics{Proxying: a.proxy.filtered(), Clusters: a.clusterMetrics()}
	if len(main) > 0 && !a.byID() {
		out.Main = map[string]*command.FilteredMetrics{}
		for name, m := range main {
			if a.wantName(name) {
				out.Main[name] = m
			}
		}
	}
	if len(a.workers) > 0 {
		out.Workers = a.workers
	}
	return out
}

// Available lists the metric names a query may name.
func Available() *command.AvailableMetrics {
	am := &command.AvailableMetrics{}
	for _, i := range append(ProxyMetrics[:len(ProxyMetrics):len(ProxyMetrics)], MainMetrics...) {
		am.ProxyMetrics = append(am.ProxyMetrics, i.Name)
	}
	for _, i := range ClusterMetrics {
		am.ClusterMetrics = append(am.ClusterMetrics, i.Name)
	}
	return am
}
