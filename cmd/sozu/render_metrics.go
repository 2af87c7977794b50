package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// renderMetrics renders query_metrics' answer: the supervisor's own
// metrics, the proxy level merged over workers, each worker's when asked
// (--workers), then each cluster and its backends. Metrics are listed in
// the order of the catalogue (proto/metrics), unknown names after, by
// name; latencies are percentiles with units.
func renderMetrics(b *strings.Builder, am *command.AggregatedMetrics) {
	empty := true
	section := func(title string, m map[string]*command.FilteredMetrics, cluster bool, indent string) {
		if len(m) == 0 {
			return
		}
		empty = false
		fmt.Fprintf(b, "%s%s\n", indent, title)
		tw := newTable(b)
		for _, name := range metricOrder(m, cluster) {
			fmt.Fprintf(tw, "%s  %s\t%s\n", indent, cleanText(name, false), metricValue(m[name]))
		}
		tw.Flush()
	}
	section("main process", am.GetMain(), false, "")
	section("proxy (all workers)", am.GetProxying(), false, "")
	for _, id := range workerOrder(slices.Collect(maps.Keys(am.GetWorkers()))) {
		w := am.GetWorkers()[id]
		if len(w.GetProxy()) > 0 {
			section(workerLabel(id), w.GetProxy(), false, "")
		} else if hasClusterMetrics(w.GetClusters()) {
			// A query naming clusters or backends: no proxy-level
			// metrics, the worker's clusters still go under its name.
			fmt.Fprintf(b, "%s\n", workerLabel(id))
			empty = false
		}
		renderClusterMetrics(b, w.GetClusters(), section, "  ")
	}
	renderClusterMetrics(b, am.GetClusters(), section, "")
	if empty {
		// A query whose names or ids match nothing (the answer may
		// still list the clusters, each without a metric).
		b.WriteString("no metrics match the query (sozu metrics get --list lists the names)\n")
	}
}

func renderClusterMetrics(b *strings.Builder, cs map[string]*command.ClusterMetrics,
	section func(string, map[string]*command.FilteredMetrics, bool, string), indent string) {
	if !hasClusterMetrics(cs) {
		// None has a metric (a query whose names are all proxy-level or
		// match nothing): no bare headings. Else a cluster without one
		// still shows, idle.
		return
	}
	for _, id := range slices.Sorted(maps.Keys(cs)) {
		c := cs[id]
		title := "cluster " + cleanText(id, false)
		if len(c.GetCluster()) == 0 {
			fmt.Fprintf(b, "%s%s\n", indent, title)
		} else {
			section(title, c.GetCluster(), true, indent)
		}
		for _, be := range c.GetBackends() {
			section("backend "+cleanText(be.GetBackendId(), false), be.GetMetrics(), true, indent+"  ")
		}
	}
}

// hasClusterMetrics reports whether a cluster of cs, or a backend of one,
// has a metric.
func hasClusterMetrics(cs map[string]*command.ClusterMetrics) bool {
	for _, c := range cs {
		if len(c.GetCluster()) > 0 {
			return true
		}
		for _, be := range c.GetBackends() {
			if len(be.GetMetrics()) > 0 {
				return true
			}
		}
	}
	return false
}

// metricOrder is the catalogue's order for the names of m, then the
// others sorted.
func metricOrder(m map[string]*command.FilteredMetrics, cluster bool) []string {
	list := pm.ProxyMetrics
	if cluster {
		list = pm.ClusterMetrics
	}
	var out []string
	seen := map[string]bool{}
	for _, i := range list {
		if _, ok := m[i.Name]; ok && !seen[i.Name] {
			out = append(out, i.Name)
			seen[i.Name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if !seen[name] {
			out = append(out, name)
		}
	}
	return out
}

// metricValue renders one value: a number, or for a latency its sample
// count and percentiles.
func metricValue(m *command.FilteredMetrics) string {
	switch v := m.GetInner().(type) {
	case *command.FilteredMetrics_Count:
		return fmt.Sprint(v.Count)
	case *command.FilteredMetrics_Gauge:
		return fmt.Sprint(v.Gauge)
	case *command.FilteredMetrics_Time:
		return micros(v.Time)
	case *command.FilteredMetrics_Percentiles:
		p := v.Percentiles
		if p.GetSamples() == 0 {
			return "no samples"
		}
		return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s p99.9=%s p99.99=%s max=%s", p.GetSamples(),
			micros(p.GetP_50()), micros(p.GetP_90()), micros(p.GetP_99()), micros(p.GetP_99_9()), micros(p.GetP_99_99()), micros(p.GetP_100()))
	case *command.FilteredMetrics_Histogram:
		return fmt.Sprintf("histogram of %d samples", v.Histogram.GetCount())
	case *command.FilteredMetrics_TimeSerie:
		return fmt.Sprintf("last second %d", v.TimeSerie.GetLastSecond())
	}
	return "-"
}

// micros renders a duration given in microseconds with a unit: µs below a
// millisecond, ms below a second, s above.
func micros(us uint64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	}
	return fmt.Sprintf("%.2fs", float64(us)/1e6)
}

// renderAvailableMetrics renders `metrics get --list`.
func renderAvailableMetrics(b *strings.Builder, a *command.AvailableMetrics) {
	b.WriteString("proxy metrics:\n")
	for _, n := range a.GetProxyMetrics() {
		fmt.Fprintf(b, "  %s\n", cleanText(n, false))
	}
	b.WriteString("cluster and backend metrics:\n")
	for _, n := range a.GetClusterMetrics() {
		fmt.Fprintf(b, "  %s\n", cleanText(n, false))
	}
}
