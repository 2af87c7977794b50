// Package export renders the workers' metrics for the outside: statsd
// datagrams (upstream Sōzu's keys) and the Prometheus text exposition
// format. It is pure: the supervisor gathers the metrics, sends and serves.
package export

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// MaxDatagram bounds a statsd datagram: below a 1500-byte Ethernet MTU
// with IPv6 and UDP headers, so that no datagram is fragmented.
const MaxDatagram = 1432

// Level is how deep the exporters go: upstream's [metrics] detail, and
// disable_cluster_metrics (which is LevelProxy).
type Level uint8

const (
	LevelProxy   Level = iota // proxy level only
	LevelCluster              // and per cluster
	LevelBackend              // and per backend
)

// LevelOf maps [metrics] detail and disable_cluster_metrics to a Level:
// process and frontend detail (frontends carry no metrics here) and
// disabled cluster metrics give the proxy level only.
func LevelOf(detail command.MetricDetail, disableClusters bool) Level {
	switch {
	case disableClusters:
		return LevelProxy
	case detail == command.MetricDetail_DETAIL_BACKEND:
		return LevelBackend
	case detail == command.MetricDetail_DETAIL_CLUSTER:
		return LevelCluster
	}
	return LevelProxy
}

// StatsdOptions are the [metrics] keys of the statsd export.
type StatsdOptions struct {
	Prefix  string // upstream's default: "sozu"
	Tagged  bool   // tagged_metrics: origin, version, cluster_id, backend_id as tags
	Version string // the version tag
	Level   Level
}

// Statsd turns successive snapshots of the workers' metrics into statsd
// lines, upstream's way: each worker is an origin (Origin), the
// supervisor another (MainOrigin); counters
// are sent as the increase since the previous flush (|c), gauges as their
// value (|g), latencies as their new samples (|ms, one line per sketch bin,
// with a sample rate of 1/n standing for its n samples). It keeps the
// previous values of the origins it heard last time, and of the workers
// that did not answer this time (Flush's silent), so its memory follows
// the configuration and the worker table. Not safe for concurrent use.
type Statsd struct {
	opt StatsdOptions
	// By origin, then line key: what each origin's counters and
	// sketches held at its last answer.
	prev map[string]map[string]int64             // counters
	bins map[string]map[string]map[uint64]uint64 // sketches: count per bin (ns)
}

// Origin is the statsd origin of worker id, upstream's worker tag: "WRK-"
// and the id in two digits at least ("WRK-00", "WRK-01", as the access
// log's tag); an id that is not a number is used as it is.
func Origin(id string) string {
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return "WRK-" + clean(id)
	}
	return fmt.Sprintf("WRK-%02d", n)
}

// NewStatsd returns an exporter with opt.
func NewStatsd(opt StatsdOptions) *Statsd {
	if opt.Prefix == "" {
		opt.Prefix = "sozu"
	}
	return &Statsd{opt: opt, prev: map[string]map[string]int64{}, bins: map[string]map[string]map[uint64]uint64{}}
}

// MainOrigin is the statsd origin of the supervisor's own metrics
// (configuration.clusters…), upstream's main process's.
const MainOrigin = "MAIN"

// Reset forgets what the counters and sketches held: the next Flush sends
// every counter whole and every sample, for metrics that restarted
// (configure_metrics CLEAR) since the last one.
func (s *Statsd) Reset() {
	s.prev, s.bins = map[string]map[string]int64{}, map[string]map[string]map[uint64]uint64{}
}

// Flush returns the datagrams for main (the supervisor's own metrics, sent
// under MainOrigin; may be nil) and workers (by worker id, as
// query_metrics answers them in WorkerMetrics: times as sketch
// histograms), each at most MaxDatagram bytes, lines in a stable order.
// silent names the workers asked that did not answer this time (past
// worker_timeout): their last values are kept, so that their next answer
// sends what is new since then, not again everything since they started;
// a worker neither answering nor silent (gone) is forgotten.
func (s *Statsd) Flush(main map[string]*command.FilteredMetrics, workers map[string]*command.WorkerMetrics, silent ...string) [][]byte {
	prev, bins := s.prev, s.bins
	s.prev, s.bins = map[string]map[string]int64{}, map[string]map[string]map[uint64]uint64{}
	for _, id := range silent {
		if o := Origin(id); workers[id] == nil {
			if prev[o] != nil {
				s.prev[o] = prev[o]
			}
			if bins[o] != nil {
				s.bins[o] = bins[o]
			}
		}
	}
	lines := s.metrics(nil, prev[MainOrigin], bins[MainOrigin], MainOrigin, "", "", main)
	for _, id := range slices.Sorted(maps.Keys(workers)) {
		lines = s.worker(lines, prev, bins, id, workers[id])
	}
	return pack(lines)
}

// Baseline takes wm, worker id's metrics, as sent already: the next Flush
// sends what is new since. For a worker inherited in a hot upgrade, whose
// counts so far the previous supervisor sent.
func (s *Statsd) Baseline(id string, wm *command.WorkerMetrics) {
	s.worker(nil, nil, nil, id, wm)
}

// worker appends the lines of wm, worker id's metrics, given the previous
// values of every origin.
func (s *Statsd) worker(lines []string, prev map[string]map[string]int64, bins map[string]map[string]map[uint64]uint64,
	id string, wm *command.WorkerMetrics) []string {
	origin := Origin(id)
	p, b := prev[origin], bins[origin]
	lines = s.metrics(lines, p, b, origin, "", "", wm.GetProxy())
	if s.opt.Level < LevelCluster {
		return lines
	}
	for _, cid := range slices.Sorted(maps.Keys(wm.GetClusters())) {
		cm := wm.GetClusters()[cid]
		lines = s.metrics(lines, p, b, origin, cid, "", cm.GetCluster())
		if s.opt.Level < LevelBackend {
			continue
		}
		for _, be := range cm.GetBackends() {
			lines = s.metrics(lines, p, b, origin, cid, be.GetBackendId(), be.GetMetrics())
		}
	}
	return lines
}

// metrics appends the lines of m, an origin's metrics at one level, given
// what the origin's counters (prev) and sketches (bins) held at its last
// answer, and records what they hold now.
func (s *Statsd) metrics(lines []string, prev map[string]int64, bins map[string]map[uint64]uint64,
	origin, cluster, backend string, m map[string]*command.FilteredMetrics) []string {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		key := s.key(origin, cluster, backend, name)
		switch v := m[name].GetInner().(type) {
		case *command.FilteredMetrics_Count:
			if s.prev[origin] == nil {
				s.prev[origin] = map[string]int64{}
			}
			s.prev[origin][key] = v.Count
			d := v.Count - prev[key]
			if d < 0 { // cleared
				d = v.Count
			}
			if d != 0 {
				lines = append(lines, key+":"+strconv.FormatInt(d, 10)+"|c")
			}
		case *command.FilteredMetrics_Gauge:
			lines = append(lines, key+":"+strconv.FormatUint(v.Gauge, 10)+"|g")
		case *command.FilteredMetrics_Histogram:
			old := bins[key]
			cur := make(map[uint64]uint64, len(v.Histogram.GetBuckets()))
			reset := false
			for _, b := range v.Histogram.GetBuckets() {
				cur[b.GetLe()] += b.GetCount()
			}
			for le, n := range old {
				if cur[le] < n {
					reset = true // cleared: every sample is new
				}
			}
			if s.bins[origin] == nil {
				s.bins[origin] = map[string]map[uint64]uint64{}
			}
			s.bins[origin][key] = cur
			for _, le := range slices.Sorted(maps.Keys(cur)) {
				n := cur[le]
				if !reset {
					n -= old[le]
				}
				if n == 0 {
					continue
				}
				line := key + ":" + strconv.FormatFloat(float64(le)/1e6, 'f', -1, 64) + "|ms"
				if n > 1 {
					line += "|@" + strconv.FormatFloat(1/float64(n), 'g', 6, 64)
				}
				lines = append(lines, line)
			}
		}
	}
	return lines
}

// key is upstream's statsd key of a metric, before the ":value|type".
func (s *Statsd) key(origin, cluster, backend, name string) string {
	p := s.opt.Prefix
	cluster, backend, name = clean(cluster), clean(backend), clean(name)
	if s.opt.Tagged {
		tags := ",origin=" + origin + ",version=" + clean(s.opt.Version)
		switch {
		case backend != "":
			return p + ".backend." + name + tags + ",cluster_id=" + cluster + ",backend_id=" + backend
		case cluster != "":
			return p + ".cluster." + name + tags + ",cluster_id=" + cluster
		}
		return p + "." + name + tags
	}
	// A plain key is a dotted path: a '.' in an id would move the id's
	// metrics elsewhere in it (cluster "a.backend.b" posing as backend b
	// of cluster a), so ids lose theirs there.
	cluster, backend = undot(cluster), undot(backend)
	switch {
	case backend != "":
		return p + "." + origin + ".cluster." + cluster + ".backend." + backend + "." + name
	case cluster != "":
		return p + "." + origin + ".cluster." + cluster + "." + name
	}
	return p + "." + origin + "." + name
}

// undot replaces the '.' of an id by '_', for a plain (dotted) key.
func undot(id string) string { return strings.ReplaceAll(id, ".", "_") }

// clean replaces what would break a statsd line (':' '|' ',' '=' '@',
// whitespace and control characters) by '_': ids come from the
// configuration, and one cannot forge another metric's line.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ':' || r == '|' || r == ',' || r == '=' || r == '@' || r == '#' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

// pack joins lines into datagrams of at most MaxDatagram bytes (a longer
// line goes alone, truncated to it: it would not arrive whole anyway).
func pack(lines []string) [][]byte {
	var out [][]byte
	var cur []byte
	for _, l := range lines {
		if len(l) > MaxDatagram {
			l = l[:MaxDatagram]
		}
		if len(cur) > 0 && len(cur)+1+len(l) > MaxDatagram {
			out = append(out, cur)
			cur = nil
		}
		if len(cur) > 0 {
			cur = append(cur, '\n')
		}
		cur = append(cur, l...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
