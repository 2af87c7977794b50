package top

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// Metric names read from query_metrics' AggregatedMetrics (proto/metrics:
// upstream Sōzu's names). Percentiles are in microseconds (upstream:
// milliseconds).
const (
	mHTTPRequests  = pm.HTTPRequests          // proxy counter
	mStatus5xx     = pm.Status5xx             // proxy and cluster counter
	mRequestTime   = pm.RequestTime           // proxy and cluster time
	mClientConns   = pm.ClientConnections     // proxy gauge
	mRequests      = pm.Requests              // cluster and backend counter
	mBackendResp   = pm.BackendResponseTime   // cluster and backend time
	mBytesIn       = pm.BytesIn               // counters
	mBytesOut      = pm.BytesOut              //
	mBackendConns  = pm.ConnectionsPerBackend // backend gauge
	mBackendUp     = pm.BackendAvailable      // backend gauge: 1 in rotation
	mH2Connections = pm.H2Connections
	mH2Streams     = pm.H2Streams
	mH2Active      = pm.H2ActiveStreams
	mH2Flood       = pm.H2FloodViolations
	mH2Resets      = pm.H2StreamResets
	mH2Reaped      = pm.H2Reaped
)

// Thresholds and depths of the view.
const (
	certWarnWithin  = 30 * 24 * time.Hour // certificates expiring sooner are highlighted
	certCritWithin  = 7 * 24 * time.Hour
	p99CriticalUs   = 500_000 // p99 at or above this (500 ms) is critical
	errCriticalPct  = 1.0     // 5xx share at or above this is critical
	seriesDepth     = 60      // samples kept for the sparklines: a minute at one per second
	eventsDepth     = 200     // events kept for the events pane
	inventoryPeriod = 5       // state queries (listeners, certificates, clusters) every N metrics polls
)

// Sample is one query_metrics answer and when it was received.
type Sample struct {
	At time.Time
	M  *command.AggregatedMetrics
}

// counter reads a count or a gauge; ok is false when name is absent.
func counter(m map[string]*command.FilteredMetrics, name string) (float64, bool) {
	f := m[name]
	switch v := f.GetInner().(type) {
	case *command.FilteredMetrics_Count:
		return float64(v.Count), true
	case *command.FilteredMetrics_Gauge:
		return float64(v.Gauge), true
	}
	return 0, false
}

func percentiles(m map[string]*command.FilteredMetrics, names ...string) *command.Percentiles {
	for _, n := range names {
		if p := m[n].GetPercentiles(); p != nil && p.GetSamples() > 0 {
			return p
		}
	}
	return nil
}

// rate is the per-second growth of counter name between two samples. A
// counter that went down (cleared) counts as 0; ok is false when either
// sample lacks it or no time passed.
func rate(prev, cur map[string]*command.FilteredMetrics, name string, dt float64) (float64, bool) {
	a, okA := counter(prev, name)
	b, okB := counter(cur, name)
	if !okA || !okB || dt <= 0 {
		return 0, false
	}
	if b < a {
		return 0, true
	}
	return (b - a) / dt, true
}

// pair is the metrics of one object in the previous and current sample.
type pair struct {
	prev, cur map[string]*command.FilteredMetrics
	dt        float64
}

func (p pair) rate(name string) (float64, bool) { return rate(p.prev, p.cur, name, p.dt) }

// ClusterRow is a line of the clusters pane. Known* say whether a value
// is available (metrics may be missing).
type ClusterRow struct {
	ID                 string
	RPS, ErrPct        float64
	KnownRate          bool
	P50, P99           uint64 // µs
	KnownLatency       bool
	Available, Total   int
	KnownAvail         bool
	Frontends          int
	Critical           bool
	backendsByMetrics  int
	backendsByState    int
	availableByMetrics int
	hasAvailMetric     bool
}

// BackendRow is a line of the backends pane.
type BackendRow struct {
	Cluster, ID, Address string
	InBps, OutBps        float64
	RPS                  float64
	KnownRate            bool
	Conns                float64
	KnownConns           bool
	P50, P99             uint64 // µs
	KnownLatency         bool
	State                string // "up", "down" or "?"
}

type backendKey struct{ cluster, id string }

// clusterRows joins the clusters of the state (inventory) with their
// metrics (two samples give rates) and the backends the events reported
// down.
func clusterRows(inv []*command.ClusterInformation, prev, cur *Sample, down map[backendKey]bool) []ClusterRow {
	rows := map[string]*ClusterRow{}
	get := func(id string) *ClusterRow {
		r := rows[id]
		if r == nil {
			r = &ClusterRow{ID: id}
			rows[id] = r
		}
		return r
	}
	for _, ci := range inv {
		r := get(ci.GetConfiguration().GetClusterId())
		r.backendsByState = len(ci.GetBackends())
		r.Frontends = len(ci.GetHttpFrontends()) + len(ci.GetHttpsFrontends()) + len(ci.GetTcpFrontends()) + len(ci.GetUdpFrontends())
		up := 0
		for _, b := range ci.GetBackends() {
			if !down[backendKey{r.ID, b.GetBackendId()}] {
				up++
			}
		}
		r.Available, r.KnownAvail = up, true
	}
	if cur != nil {
		for id, cm := range cur.M.GetClusters() {
			r := get(id)
			if prev != nil {
				p := pair{prev.M.GetClusters()[id].GetCluster(), cm.GetCluster(), cur.At.Sub(prev.At).Seconds()}
				if rps, ok := p.rate(mRequests); ok {
					r.RPS, r.KnownRate = rps, true
					if e, ok := p.rate(mStatus5xx); ok && rps > 0 {
						r.ErrPct = 100 * e / rps
					}
				}
			}
			if pc := percentiles(cm.GetCluster(), mRequestTime, mBackendResp); pc != nil {
				r.P50, r.P99, r.KnownLatency = pc.GetP_50(), pc.GetP_99(), true
			}
			r.backendsByMetrics = len(cm.GetBackends())
			for _, b := range cm.GetBackends() {
				if v, ok := counter(b.GetMetrics(), mBackendUp); ok {
					r.hasAvailMetric = true
					if v >= 1 {
						r.availableByMetrics++
					}
				}
			}
		}
	}
	out := make([]ClusterRow, 0, len(rows))
	for _, r := range rows {
		r.Total = max(r.backendsByState, r.backendsByMetrics)
		if r.hasAvailMetric {
			r.Available, r.KnownAvail = r.availableByMetrics, true
		}
		r.Critical = r.ErrPct >= errCriticalPct || (r.KnownLatency && r.P99 >= p99CriticalUs) ||
			(r.KnownAvail && r.Total > 0 && r.Available == 0)
		out = append(out, *r)
	}
	return out
}

// backendRows lists the backends of the state, with their metrics when
// known; backends only the metrics know are listed too.
func backendRows(inv []*command.ClusterInformation, prev, cur *Sample, down map[backendKey]bool) []BackendRow {
	rows := map[backendKey]*BackendRow{}
	var order []backendKey
	get := func(cluster, id string) *BackendRow {
		k := backendKey{cluster, id}
		r := rows[k]
		if r == nil {
			r = &BackendRow{Cluster: cluster, ID: id, State: "?"}
			rows[k] = r
			order = append(order, k)
		}
		return r
	}
	for _, ci := range inv {
		for _, b := range ci.GetBackends() {
			r := get(b.GetClusterId(), b.GetBackendId())
			r.Address = b.GetAddress().Display()
			r.State = "up"
			if down[backendKey{r.Cluster, r.ID}] {
				r.State = "down"
			}
		}
	}
	if cur != nil {
		for cid, cm := range cur.M.GetClusters() {
			var prevBackends []*command.BackendMetrics
			if prev != nil {
				prevBackends = prev.M.GetClusters()[cid].GetBackends()
			}
			for _, bm := range cm.GetBackends() {
				r := get(cid, bm.GetBackendId())
				if v, ok := counter(bm.GetMetrics(), mBackendUp); ok {
					r.State = map[bool]string{true: "up", false: "down"}[v >= 1]
				}
				r.Conns, r.KnownConns = counter(bm.GetMetrics(), mBackendConns)
				if pc := percentiles(bm.GetMetrics(), mBackendResp); pc != nil {
					r.P50, r.P99, r.KnownLatency = pc.GetP_50(), pc.GetP_99(), true
				}
				if prev == nil {
					continue
				}
				for _, pb := range prevBackends {
					if pb.GetBackendId() != bm.GetBackendId() {
						continue
					}
					p := pair{pb.GetMetrics(), bm.GetMetrics(), cur.At.Sub(prev.At).Seconds()}
					r.RPS, r.KnownRate = p.rate(mRequests)
					r.InBps, _ = p.rate(mBytesIn)
					r.OutBps, _ = p.rate(mBytesOut)
				}
			}
		}
	}
	out := make([]BackendRow, 0, len(order))
	for _, k := range order {
		out = append(out, *rows[k])
	}
	return out
}

// CertRow is a line of the certificates pane.
type CertRow struct {
	Fingerprint string
	Names       string
	NotAfter    time.Time
	Known       bool // NotAfter was read from the PEM
	Left        time.Duration
	Warn, Crit  bool // expires within 30 days / 7 days (or has expired)
}

// certRows lists the certificates of the state, soonest expiry first.
func certRows(c *command.CertificatesWithFingerprints, now time.Time) []CertRow {
	var out []CertRow
	for fp, ck := range c.GetCerts() {
		r := CertRow{Fingerprint: fp, Names: strings.Join(ck.GetNames(), ",")}
		if na, ok := notAfter(ck.GetCertificate()); ok {
			r.NotAfter, r.Known = na, true
			r.Left = na.Sub(now)
			r.Warn = r.Left < certWarnWithin
			r.Crit = r.Left < certCritWithin
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b CertRow) int {
		if a.Known != b.Known {
			if a.Known {
				return -1
			}
			return 1
		}
		return cmp.Or(a.NotAfter.Compare(b.NotAfter), strings.Compare(a.Fingerprint, b.Fingerprint))
	})
	return out
}

func notAfter(certPEM string) (time.Time, bool) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return time.Time{}, false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, false
	}
	return c.NotAfter, true
}

// ring is a fixed-capacity series, oldest first.
type ring struct {
	v   []float64
	cap int
}

func (r *ring) push(x float64) {
	if r.cap == 0 {
		r.cap = seriesDepth
	}
	if len(r.v) == r.cap {
		copy(r.v, r.v[1:])
		r.v = r.v[:len(r.v)-1]
	}
	r.v = append(r.v, x)
}

func (r *ring) last() (float64, bool) {
	if len(r.v) == 0 {
		return 0, false
	}
	return r.v[len(r.v)-1], true
}

// trend compares the last value with the mean of the ones before it:
// "▲" above by more than 5%, "▼" below, "●" about the same.
func (r *ring) trend() string {
	if len(r.v) < 2 {
		return "●"
	}
	var sum float64
	for _, x := range r.v[:len(r.v)-1] {
		sum += x
	}
	mean := sum / float64(len(r.v)-1)
	last := r.v[len(r.v)-1]
	switch {
	case last > mean*1.05 && last-mean > 1e-9:
		return "▲"
	case last < mean*0.95 && mean-last > 1e-9:
		return "▼"
	}
	return "●"
}
