package proxy

import (
	"time"

	"github.com/sozu-go/sozu/worker/metrics"
)

// The session's part of the worker's metrics (package metrics): s.mx is
// the record of the request in progress, filled as it goes and recorded
// by endRequest. Nothing here allocates; with metrics off (no registry)
// nothing reads the clock either.

// mxOn reports whether this request is measured.
func (s *session) mxOn() bool { return s.srv.opt.Metrics != nil }

// begin marks the first byte of a request, which came now (it reads the
// clock): where its request time starts, and its service time, in the
// metrics as in its access record.
func (s *session) begin() {
	now := s.tick()
	s.lg.begin(now)
	s.mx.Start = now
}

// mxCluster attributes the request to cl, when cluster metrics are on
// (configure_metrics).
func (s *session) mxCluster(cl *Cluster) {
	if cl != nil && cl.ID != "" && s.srv.opt.Metrics.ClusterMetrics() {
		s.mx.Cluster = s.srv.opt.Metrics.Cluster(cl.ID)
	}
}

// mxSent notes that the request went to a backend over bc's connection,
// whose connect time (zero for a reused one) it takes.
func (s *session) mxSent(backendID string, connect time.Duration) {
	if s.mx.Cluster == nil || !s.mxOn() {
		return
	}
	s.mx.Backend = s.mx.Cluster.Backend(backendID)
	s.mx.Connect = connect
	s.mx.BackendSent = s.now.Sub(s.mx.Start) // forward ticks after the write
}

// noteBackendStart notes, for the access record and the metrics alike,
// that a backend was reached for the request whose first connect attempt
// began at start: the backend's part of the request, from start to its
// end, is not the proxy's service time (metrics.Request.BackendStart).
func (s *session) noteBackendStart(start time.Time) {
	if s.lg.on {
		s.lg.beStart = start
	}
	if s.mxOn() {
		s.mx.Reached, s.mx.BackendStart = true, start.Sub(s.mx.Start)
	}
}

// noteUnparsed counts the n bytes read of a head that ended before it
// could be parsed (a slow head's 408, a head the scanner refused, a
// client that left mid-head) in bytes_in and in the access record: every
// request byte read counts, parsed or not.
func (s *session) noteUnparsed(n int) {
	s.mx.BytesIn += int64(n)
	s.lg.noteUnparsed(n)
}

// endRequest records the request that ended, if it got an answer or
// carried bytes (a request its client left: its bytes only), and forgets
// it.
func (s *session) endRequest() {
	if (s.mx.Status != 0 || s.mx.BytesIn != 0 || s.mx.BytesOut != 0) && s.mxOn() {
		s.srv.opt.Metrics.End(&s.mx, s.now) // its callers tick at the request's end
	}
	s.mx = metrics.Request{}
}
