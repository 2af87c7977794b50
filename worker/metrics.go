package worker

import (
	"fmt"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/metrics"
	"github.com/sozu-go/sozu/worker/proxy"
	"github.com/sozu-go/sozu/worker/tcp"
)

// The worker's side of query_metrics and configure_metrics: the registry
// the servers record into (package metrics), plus what is read live at
// query time (backend states and connections, HTTP/2 and per-IP counters
// the servers keep themselves, UDP drops by cause).

// liveCounters reads the proxy-level counters that the servers, the
// health checker, the backends and the log shippers keep themselves
// rather than the registry: HTTP/2, UDP drops by cause, panics, per-IP
// refusals, health checks, fail-open picks, log drops. They only grow
// (a removed listener takes its own with it), so that a clear records
// them (clearedLive) and snapshots show the difference. Command loop
// only.
func (w *Worker) liveCounters() map[string]int64 {
	var h2Conns, h2Streams, calm, resets, reaped uint64
	var floods [h2.NumFloodClasses]uint64
	var kinds [h2.NumViolationKinds]uint64
	var panics int64
	for _, srv := range w.servers {
		for c := range floods {
			floods[c] += srv.H2Stats.Floods[c].Load()
		}
		for k := range kinds {
			kinds[k] += srv.H2Stats.Kinds[k].Load()
		}
		h2Conns += srv.H2Stats.Conns.Load()
		h2Streams += srv.H2Stats.Streams.Load()
		calm += srv.H2Stats.CalmGoAways.Load()
		resets += srv.H2Stats.StreamResets.Load()
		reaped += srv.H2Stats.ReapedStreams.Load()
		panics += srv.Panics.Load()
	}
	var trunc, invalid, noBackend, shed, srcCap, sockErr, loop int64
	for _, srv := range w.udpSrv {
		d := &srv.Drops
		trunc += d.Oversized.Load()
		invalid += d.Invalid.Load()
		noBackend += d.NoCluster.Load() + d.NoBackend.Load()
		shed += d.TableFull.Load()
		srcCap += d.SourceCap.Load()
		sockErr += d.DialFailed.Load()
		loop += d.Loop.Load()
		panics += d.Panics.Load()
	}
	hs := &w.health.Stats
	live := map[string]int64{
		pm.UDPDroppedTruncated:  trunc,
		pm.UDPDroppedInvalid:    invalid,
		pm.UDPDroppedNoBackend:  noBackend,
		pm.UDPDroppedShed:       shed,
		pm.UDPDroppedSourceCap:  srcCap,
		pm.UDPDroppedSocketFail: sockErr,
		pm.UDPDroppedLoop:       loop,
		pm.UDPDropped:           trunc + invalid + noBackend + shed + srcCap + sockErr + loop,
		pm.H2Connections:        int64(h2Conns),
		pm.H2Streams:            int64(h2Streams),
		pm.H2FloodViolations:    int64(calm),
		pm.H2StreamResets:       int64(resets),
		pm.H2Reaped:             int64(reaped),
		pm.Panics:               panics,
		pm.RejectedPerIP:        w.ipcaps.Rejected.Load(),
		pm.HealthCheckSuccess:   hs.Success.Load(),
		pm.HealthCheckFailure:   hs.Failure.Load(),
		pm.HealthCheckUp:        hs.Up.Load(),
		pm.HealthCheckDown:      hs.Down.Load(),
		pm.FailOpen:             w.reg.FailOpen(),
		pm.BackendConnectErrors: w.reg.ConnectErrors(),
	}
	for c, n := range floods {
		live[pm.H2Flood(h2.FloodClass(c).String())] = int64(n)
	}
	for k := h2.KindNone + 1; k < h2.NumViolationKinds; k++ {
		live[pm.H2Flood(k.String())] = int64(kinds[k])
	}
	if w.logs != nil {
		live[pm.AccessLogDrops] = int64(w.logs.dropped())
	}
	return live
}

// metricsSnapshot is this worker's answer to query_metrics: every metric,
// unfiltered (the supervisor applies the query's options once it has
// merged the workers' answers). Command loop only.
func (w *Worker) metricsSnapshot() *command.WorkerMetrics {
	wm := w.metrics.Snapshot()
	for name, v := range w.liveCounters() {
		// Since the last clear, as the registry's counters.
		wm.Proxy[name] = metrics.Count(max(v-w.clearedLive[name], 0))
	}
	var active int64
	for _, srv := range w.servers {
		active += srv.H2Stats.ActiveStreams.Load()
	}
	wm.Proxy[pm.H2ActiveStreams] = metrics.Gauge(uint64(max(active, 0)))
	// Upstream's buffer pool, slab and zombie gauges (its doc/metrics.md),
	// read from what plays their part here.
	wm.Proxy[pm.BufferNumber] = metrics.Gauge(uint64(max(proxy.BuffersCheckedOut()+tcp.BuffersCheckedOut(), 0)))
	wm.Proxy[pm.BufferInUse] = metrics.Gauge(wm.Proxy[pm.BufferNumber].GetGauge())
	wm.Proxy[pm.ClientConnectionsMax] = metrics.Gauge(w.cfg.GetMaxConnections())
	listeners := uint64(len(w.servers) + len(w.tcpSrv) + len(w.udpSrv))
	wm.Proxy[pm.SlabEntries] = metrics.Gauge(listeners + wm.Proxy[pm.ClientConnections].GetGauge() + wm.Proxy[pm.UDPActiveFlows].GetGauge())
	wm.Proxy[pm.Zombies] = metrics.Gauge(0)
	if w.snap == nil {
		wm.Proxy[pm.BackendConnections] = metrics.Gauge(0)
		return wm
	}
	// Every configured backend shows, with its state, traffic or not.
	var backendConns int64
	seen := map[*backends.Backend]bool{} // a backend may serve several sets
	for _, set := range w.snap.sets {
		for _, b := range set.Backends() {
			if seen[b] {
				continue
			}
			seen[b] = true
			if n := b.H2Conns(); n > 0 {
				backendConns += int64(n)
			} else {
				backendConns += b.Inflight() + int64(b.Idle())
			}
		}
	}
	wm.Proxy[pm.BackendConnections] = metrics.Gauge(uint64(max(backendConns, 0)))
	if !w.metrics.ClusterMetrics() {
		return wm // the backends' gauges are cluster metrics: off
	}
	for id, set := range w.snap.sets {
		cm := wm.Clusters[id]
		if cm == nil {
			cm = &command.ClusterMetrics{Cluster: map[string]*command.FilteredMetrics{}}
			wm.Clusters[id] = cm
		}
		type live struct {
			inflight int64
			up       bool
		}
		byID := map[string]*live{}
		healthy := 0
		for _, b := range set.Backends() {
			if !b.HealthDown() {
				healthy++
			}
			l := byID[b.ID]
			if l == nil {
				l = &live{}
				byID[b.ID] = l
			}
			l.inflight += b.Inflight()
			l.up = l.up || (!b.Down() && !b.HealthDown())
		}
		if _, checked := w.snap.health[id]; checked && set.Len() > 0 {
			cm.Cluster[pm.HealthyBackends] = metrics.Gauge(uint64(healthy))
		}
		for bid, l := range byID {
			bm := metrics.BackendOf(cm, bid)
			bm.Metrics[pm.ConnectionsPerBackend] = metrics.Gauge(uint64(max(l.inflight, 0)))
			available := uint64(0)
			if l.up {
				available = 1
			}
			bm.Metrics[pm.BackendAvailable] = metrics.Gauge(available)
			if bm.Metrics[pm.BackendUp] == nil { // no move recorded (the registry has no entry)
				bm.Metrics[pm.BackendUp], bm.Metrics[pm.BackendDown] = metrics.Count(0), metrics.Count(0)
			}
		}
	}
	return wm
}

// configureMetrics applies configure_metrics: enabled and disabled turn
// the recording of cluster and backend metrics on and off, as upstream
// (proxy metrics are always recorded; disable_cluster_metrics sends
// disabled at start), clear zeroes what was recorded.
func (w *Worker) configureMetrics(c command.MetricsConfiguration) error {
	switch c {
	case command.MetricsConfiguration_ENABLED:
		w.metrics.SetClusterMetrics(true)
	case command.MetricsConfiguration_DISABLED:
		w.metrics.SetClusterMetrics(false)
	case command.MetricsConfiguration_CLEAR:
		w.metrics.Clear()
		w.clearedLive = w.liveCounters()
	default:
		return fmt.Errorf("configure_metrics: unknown configuration %d", c)
	}
	return nil
}

// retainMetrics drops the metrics of the clusters and backends the new
// snapshot no longer has, so that their memory goes with them.
func (w *Worker) retainMetrics() {
	keep := map[string]map[string]bool{}
	for _, l := range w.snap.http {
		for id := range l.Clusters {
			if keep[id] == nil {
				keep[id] = map[string]bool{}
			}
		}
	}
	for id, set := range w.snap.sets {
		ids := keep[id]
		if ids == nil {
			ids = map[string]bool{}
			keep[id] = ids
		}
		for _, b := range set.Backends() {
			ids[b.ID] = true
		}
	}
	w.metrics.Retain(keep)
}
