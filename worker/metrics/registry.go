// Package metrics is a worker's metrics: proxy-level counters, and per
// cluster and per backend counters and timing sketches, recorded by the
// connection goroutines without allocating and read by the command loop
// for query_metrics and the exporters.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	pm "github.com/sozu-go/sozu/proto/metrics"
)

// Proxy-level counters, indexes into Registry.proxy.
const (
	accepted = iota
	requests
	httpErrors
	status1xx
	status2xx
	status3xx
	status4xx
	status5xx
	statusOther
	bytesIn
	bytesOut
	tls12
	tls13
	tlsErrors
	tcpRequests
	udpDatagramsIn
	udpDatagramsOut
	udpBytesIn
	udpBytesOut
	udpFlowsCreated
	acceptedHTTP
	acceptedHTTPS
	acceptedTCP
	alpnHTTP11
	proxyProtocolErrors
	nProxy
)

var proxyNames = [nProxy]string{
	accepted: pm.AcceptedConnections, requests: pm.HTTPRequests, httpErrors: pm.HTTPErrors,
	status1xx: pm.Status1xx, status2xx: pm.Status2xx, status3xx: pm.Status3xx, status4xx: pm.Status4xx,
	status5xx: pm.Status5xx, statusOther: pm.StatusOther, bytesIn: pm.BytesIn, bytesOut: pm.BytesOut,
	tls12: pm.TLSv12, tls13: pm.TLSv13, tlsErrors: pm.TLSHandshakeErrors, tcpRequests: pm.TCPRequests,
	udpDatagramsIn: pm.UDPDatagramsIn, udpDatagramsOut: pm.UDPDatagramsOut, udpBytesIn: pm.UDPBytesIn,
	udpBytesOut: pm.UDPBytesOut, udpFlowsCreated: pm.UDPFlowsCreated,
	acceptedHTTP: pm.AcceptedHTTP, acceptedHTTPS: pm.AcceptedHTTPS, acceptedTCP: pm.AcceptedTCP, alpnHTTP11: pm.ALPNHTTP11,
	proxyProtocolErrors: pm.ProxyProtocolErrors,
}

func statusIndex(status int) int {
	switch status / 100 {
	case 1:
		return status1xx
	case 2:
		return status2xx
	case 3:
		return status3xx
	case 4:
		return status4xx
	case 5:
		return status5xx
	}
	return statusOther
}

// Registry is one worker's metrics. Its methods are safe for concurrent
// use; a nil *Registry records nothing (metrics off in tests).
type Registry struct {
	// clusterOn: cluster and backend metrics are recorded (configure_metrics
	// ENABLED, the default; DISABLED turns them off, as upstream's
	// disable_cluster_metrics does). Proxy metrics are always recorded.
	clusterOn atomic.Bool
	proxy     [nProxy]atomic.Int64
	// By status (100-599, counted at index status): every answer, and
	// the proxy's own (pm.StatusCodes, pm.AnswerErrorCodes,
	// pm.RedirectionCodes name the ones shown).
	codes, own [600]atomic.Int64
	clients    atomic.Int64 // open client connections (a gauge: never cleared)
	flows      atomic.Int64 // live UDP flows (a gauge: never cleared)
	reqTime    *pm.Sketch
	svcTime    *pm.Sketch // service_time: reqTime without the backend's part

	mu       sync.Mutex // serialises the copy-on-write of clusters
	clusters atomic.Pointer[map[string]*Cluster]
}

// New returns a registry recording every level.
func New() *Registry {
	r := &Registry{reqTime: pm.NewSketch(), svcTime: pm.NewSketch()}
	m := map[string]*Cluster{}
	r.clusters.Store(&m)
	r.clusterOn.Store(true)
	return r
}

// SetClusterMetrics turns the recording of cluster and backend metrics on
// or off (configure_metrics ENABLED and DISABLED, as upstream); what was
// recorded stays readable, and a cluster that recorded nothing is not
// shown while they are off (Snapshot). Proxy metrics are recorded either
// way. Gauges of live flows keep counting, so that they stay true when
// recording resumes.
func (r *Registry) SetClusterMetrics(on bool) { r.clusterOn.Store(on) }

// ClusterMetrics reports whether cluster and backend metrics are recorded.
func (r *Registry) ClusterMetrics() bool { return r != nil && r.clusterOn.Load() }

// Clear zeroes every counter and empties every sketch (configure_metrics
// clear). Gauges (open connections) are kept: they describe the present.
func (r *Registry) Clear() {
	for i := range r.proxy {
		r.proxy[i].Store(0)
	}
	for i := range r.codes {
		r.codes[i].Store(0)
		r.own[i].Store(0)
	}
	r.reqTime.Clear()
	r.svcTime.Clear()
	for _, c := range *r.clusters.Load() {
		c.clear()
	}
}

// Listener is the kind of listener a client connection was accepted on.
type Listener uint8

const (
	HTTP Listener = iota
	HTTPS
	TCP
)

// Accepted records a client connection accepted on a listener of kind k
// (listener.accepted.total and listener.accepted.<kind>); Closed its end.
func (r *Registry) Accepted(k Listener) {
	if r == nil {
		return
	}
	r.clients.Add(1)
	r.proxy[accepted].Add(1)
	switch k {
	case HTTP:
		r.proxy[acceptedHTTP].Add(1)
	case HTTPS:
		r.proxy[acceptedHTTPS].Add(1)
	case TCP:
		r.proxy[acceptedTCP].Add(1)
	}
}

// Closed records the end of a client connection Accepted recorded.
func (r *Registry) Closed() {
	if r != nil {
		r.clients.Add(-1)
	}
}

// Handshake records a TLS handshake: version is tls.VersionTLS12 or 13,
// or 0 for a failed one; alpn the protocol it negotiated (a connection
// that did not negotiate h2 counts in http.alpn.http11, as upstream's).
func (r *Registry) Handshake(version uint16, alpn string) {
	if r == nil {
		return
	}
	if version != 0 && alpn != "h2" {
		r.proxy[alpnHTTP11].Add(1)
	}
	switch version {
	case 0x0303:
		r.proxy[tls12].Add(1)
	case 0x0304:
		r.proxy[tls13].Add(1)
	default:
		r.proxy[tlsErrors].Add(1)
	}
}

// ProxyProtocolError records a connection whose PROXY protocol header was
// malformed (upstream's proxy_protocol.errors).
func (r *Registry) ProxyProtocolError() {
	if r != nil {
		r.proxy[proxyProtocolErrors].Add(1)
	}
}

// Malformed records a request refused as malformed without an answer (an
// HTTP/2 stream reset with PROTOCOL_ERROR): an http.errors, as upstream
// counts parse errors there.
func (r *Registry) Malformed() {
	if r != nil {
		r.proxy[httpErrors].Add(1)
	}
}

// Request is the record of one answered request, filled by the proxy as
// the request goes (zero fields: not known or not applicable).
type Request struct {
	Start  time.Time // the request's first byte
	Status int       // the status sent to the client; 0: nothing was sent
	Own    bool      // the proxy answered itself
	Parsed bool      // its head arrived whole: its times are sampled
	// Reached: a backend was reached for the request, its first
	// connect attempt BackendStart after Start. The backend's part of
	// the request runs from there to its end, as the access record's
	// backend time does (accesslog.Record.ServiceTime): service_time is
	// the rest, with or without cluster metrics.
	Reached      bool
	Cluster      *Cluster      // the cluster it was routed to
	Backend      *Backend      // the backend that answered
	Connect      time.Duration // connect time of a new backend connection
	BackendStart time.Duration // Start to the first connect attempt (Reached)
	BackendSent  time.Duration // Start to the request sent to the backend (with Backend)
	BytesIn      int64
	BytesOut     int64
}

// End records a request that ended; now is its end. One that got no
// answer (Status 0: its client left) counts only its bytes, in bytes_in
// and bytes_out of the proxy, its cluster and its backend, as its access
// record has them: it is not a request answered. It allocates nothing.
func (r *Registry) End(q *Request, now time.Time) {
	if r == nil {
		return
	}
	r.addBytes(q)
	if q.Status == 0 {
		return
	}
	si := statusIndex(q.Status)
	r.proxy[requests].Add(1)
	r.proxy[si].Add(1)
	if q.Own && q.Status >= 400 {
		r.proxy[httpErrors].Add(1)
	}
	if q.Status < len(r.codes) {
		r.codes[q.Status].Add(1)
		if q.Own {
			r.own[q.Status].Add(1)
		}
	}
	var total, service time.Duration
	if q.Parsed {
		total = now.Sub(q.Start)
		service = total
		if q.Reached {
			service = min(q.BackendStart, total) // total less the backend's part
		}
		r.reqTime.Add(total)
		r.svcTime.Add(service)
	}
	if c := q.Cluster; c != nil && r.clusterOn.Load() {
		c.c[cRequests].Add(1)
		c.c[si].Add(1)
		if q.Parsed {
			c.reqTime.Add(total)
			c.svcTime.Add(service)
		}
		if b := q.Backend; b != nil {
			b.c[cRequests].Add(1)
			b.c[si].Add(1)
			if q.Connect > 0 {
				b.connect.Add(q.Connect)
				c.connect.Add(q.Connect)
			}
			if q.Parsed {
				d := max(total-q.BackendSent, 0)
				b.response.Add(d)
				c.response.Add(d)
			}
		}
	}
}

// addBytes counts q's bytes in and out for the proxy, its cluster and its
// backend: every request that ended has them, answered or not.
func (r *Registry) addBytes(q *Request) {
	r.proxy[bytesIn].Add(q.BytesIn)
	r.proxy[bytesOut].Add(q.BytesOut)
	if c := q.Cluster; c != nil && r.clusterOn.Load() {
		c.c[cBytesIn].Add(q.BytesIn)
		c.c[cBytesOut].Add(q.BytesOut)
		if b := q.Backend; b != nil {
			b.c[cBytesIn].Add(q.BytesIn)
			b.c[cBytesOut].Add(q.BytesOut)
		}
	}
}

// BackendMoved records a move of backend backendID of cluster clusterID
// into rotation (up) or out of it: upstream's backend.up and backend.down
// counters, kept with the backend's other metrics (by id, whatever its
// addresses), and not recorded while cluster metrics are off.
func (r *Registry) BackendMoved(clusterID, backendID string, up bool) {
	if r == nil || !r.clusterOn.Load() {
		return
	}
	b := r.Cluster(clusterID).Backend(backendID)
	if up {
		b.wentUp.Add(1)
	} else {
		b.wentDown.Add(1)
	}
}

// TCPSession records a TCP session relayed to backend backendID of
// cluster clusterID, over a connection whose dial took connect, and
// returns where its bytes count as they are relayed. It allocates only
// for a cluster or backend not seen before.
func (r *Registry) TCPSession(clusterID, backendID string, connect time.Duration) Stream {
	if r == nil {
		return Stream{}
	}
	r.proxy[tcpRequests].Add(1)
	if !r.clusterOn.Load() {
		return Stream{r: r}
	}
	c := r.Cluster(clusterID)
	b := c.Backend(backendID)
	c.c[cRequests].Add(1)
	b.c[cRequests].Add(1)
	if connect > 0 {
		c.connect.Add(connect)
		b.connect.Add(connect)
	}
	return Stream{r: r, c: c, b: b}
}

// Stream is where a TCP session's bytes count: bytes_in and bytes_out of
// the proxy, its cluster and its backend (none when cluster metrics were
// off as the session began). The zero Stream records nothing. Safe for concurrent use (each direction of a session records
// from its own goroutine).
type Stream struct {
	r *Registry
	c *Cluster
	b *Backend
}

// In records n bytes relayed from the client to the backend; Out n bytes
// relayed to the client. Neither allocates.
func (s Stream) In(n int64) { s.add(bytesIn, cBytesIn, n) }

// Out records n bytes relayed from the backend to the client.
func (s Stream) Out(n int64) { s.add(bytesOut, cBytesOut, n) }

func (s Stream) add(proxy, cluster int, n int64) {
	if n <= 0 || s.r == nil {
		return
	}
	s.r.proxy[proxy].Add(n)
	if s.c != nil && s.r.clusterOn.Load() {
		s.c.c[cluster].Add(n)
		s.b.c[cluster].Add(n)
	}
}

// Cluster returns the metrics of cluster id, made on first use. It
// allocates only then.
func (r *Registry) Cluster(id string) *Cluster {
	if r == nil {
		return nil
	}
	if c := (*r.clusters.Load())[id]; c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.clusters.Load()
	if c := old[id]; c != nil {
		return c
	}
	c := newCluster(id)
	m := make(map[string]*Cluster, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[id] = c
	r.clusters.Store(&m)
	return c
}

// Retain drops the metrics of the clusters not in keep, and of the
// backends of kept clusters that keep[cluster] does not list, so that
// memory follows the configuration. A request in flight for a dropped
// cluster or backend records into the detached entry, which is then
// garbage.
func (r *Registry) Retain(keep map[string]map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.clusters.Load()
	m := make(map[string]*Cluster, len(keep))
	for id, c := range old {
		if backends, ok := keep[id]; ok {
			c.retain(backends)
			m[id] = c
		}
	}
	r.clusters.Store(&m)
}
