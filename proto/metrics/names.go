// Package metrics is what workers, supervisor and CLI share about metrics:
// the metric names (upstream Sōzu's), the timing sketch and its encoding
// on the worker channel, and the merge of the workers' answers into one
// AggregatedMetrics (query_metrics' options applied).
package metrics

import "strconv"

// Kind is how a metric is read: a counter only grows (until a clear), a
// gauge goes up and down, a time is a distribution of durations.
type Kind uint8

const (
	Counter Kind = iota + 1
	Gauge
	Time
)

func (k Kind) String() string {
	switch k {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Time:
		return "time"
	}
	return "unknown"
}

// Metric names, as upstream Sōzu spells them (lib/src/metrics/names.rs),
// so that dashboards built for upstream read ours.
const (
	// Proxy level (per worker, summed over workers).
	ClientConnections    = "client.connections"        // gauge: open client connections
	BackendConnections   = "backend.connections"       // gauge: open backend connections, in use or pooled
	AcceptedConnections  = "listener.accepted.total"   // counter: accepted client connections
	AcceptedHTTP         = "listener.accepted.http"    // counter: accepted on HTTP listeners
	AcceptedHTTPS        = "listener.accepted.https"   // counter: accepted on HTTPS listeners
	AcceptedTCP          = "listener.accepted.tcp"     // counter: accepted on TCP listeners
	ClientConnectionsMax = "client.connections_max"    // gauge: max_connections
	ALPNHTTP11           = "http.alpn.http11"          // counter: TLS connections that did not negotiate h2
	BufferInUse          = "buffer.in_use"             // gauge: buffer.number's newer upstream name
	BackendConnectErrors = "backend.connections.error" // counter: failed backend connects
	ProxyProtocolErrors  = "proxy_protocol.errors"     // counter: malformed PROXY protocol headers
	HTTPRequests         = "http.requests"             // counter: requests whose answer started
	HTTPErrors           = "http.errors"               // counter: answers of the proxy itself with status >= 400
	Status1xx            = "http.status.1xx"
	Status2xx            = "http.status.2xx"
	Status3xx            = "http.status.3xx"
	Status4xx            = "http.status.4xx"
	Status5xx            = "http.status.5xx"
	StatusOther          = "http.status.other"
	BytesIn              = "bytes_in"  // counter: bytes from clients (HTTP request heads and bodies, TCP session bytes)
	BytesOut             = "bytes_out" // counter: bytes to clients (HTTP answers, TCP session bytes)
	TLSv12               = "tls.version.TLSv1_2"
	TLSv13               = "tls.version.TLSv1_3"
	TLSHandshakeErrors   = "protocol.tls.handshake.errors" // ours: handshakes that failed
	H2Connections        = "http.alpn.h2"                  // counter: connections that negotiated h2
	H2Streams            = "h2.streams"                    // ours: streams handed to the proxy
	H2FloodViolations    = "h2.flood.violations"           // ours: GOAWAY(ENHANCE_YOUR_CALM) sent
	H2StreamResets       = "h2.frames.tx.rst_stream"       // counter: RST_STREAM sent with an error code
	H2Reaped             = "h2.streams.reaped.idle_timeout"
	H2ActiveStreams      = "h2.streams.active"                   // ours: gauge: streams whose handler runs now
	RejectedPerIP        = "connections.rejected_per_cluster_ip" // counter: refused by max_connections_per_ip
	AccessLogDrops       = "unsent-access-logs"                  // counter: log records a worker dropped (channel or access file too slow)
	Panics               = "sessions.panics"                     // ours: connection goroutines recovered
	RequestTime          = "request_time"                        // time: first byte received → response sent
	ServiceTime          = "service_time"                        // time: request_time without the backend's (first connect attempt to the end)
	BufferNumber         = "buffer.number"                       // gauge: pooled buffers checked out (upstream's doc/metrics.md)
	SlabEntries          = "slab.entries"                        // gauge: session slots in use: listeners, client connections, UDP flows
	Zombies              = "zombies"                             // gauge: sessions stuck without a deadline: always 0 here
	TCPRequests          = "tcp.requests"                        // counter: TCP sessions relayed to a backend
	HealthCheckSuccess   = "health_check.success"                // counter: probes that passed
	HealthCheckFailure   = "health_check.failure"                // counter: probes that failed
	HealthCheckUp        = "health_check.up"                     // counter: backends found healthy again (healthy_threshold successes)
	HealthCheckDown      = "health_check.down"                   // counter: backends found unhealthy (unhealthy_threshold failures)
	FailOpen             = "backends.fail_open"                  // counter: routing decisions with no backend in rotation, sent to one out of it

	// UDP (upstream's names, lib/src/metrics/names.rs udp; "ours" marks
	// the ones upstream has not). In is client → backend, out backend →
	// client; bytes are payload bytes (a PROXY header is not counted).
	UDPDatagramsIn       = "udp.datagrams.in"                   // counter: client datagrams relayed to a backend (also cluster and backend level)
	UDPDatagramsOut      = "udp.datagrams.out"                  // counter: backend replies relayed to a client (also cluster and backend level)
	UDPBytesIn           = "udp.bytes.in"                       // counter: payload bytes of the datagrams in
	UDPBytesOut          = "udp.bytes.out"                      // counter: payload bytes of the datagrams out
	UDPActiveFlows       = "udp.active_flows"                   // gauge: live flows (also cluster and backend level)
	UDPFlowsCreated      = "udp.flows.created"                  // counter: flows opened
	UDPDropped           = "udp.datagrams.dropped"              // counter: datagrams dropped, every cause
	UDPDroppedTruncated  = "udp.datagrams.dropped.truncated"    // counter: over max_rx_datagram_size, either direction
	UDPDroppedInvalid    = "udp.datagrams.dropped.invalid"      // counter: empty client datagrams (no flow trigger)
	UDPDroppedNoBackend  = "udp.datagrams.dropped.no_backend"   // counter: no cluster on the listener, or no backend for a new flow
	UDPDroppedShed       = "udp.datagrams.dropped.shed"         // counter: new flow refused, the flow table full of active flows, or the UDP flows at 70 % of the open-file limit
	UDPDroppedSourceCap  = "udp.datagrams.dropped.source_cap"   // ours: new flow refused, its client source (IPv4 address, IPv6 /64) holds its share of the table
	UDPDroppedLoop       = "udp.datagrams.dropped.loop"         // ours: from a UDP listener's address or a backend's: a flow would loop
	UDPDroppedSocketFail = "udp.datagrams.dropped.socket_error" // ours: new flow whose backend socket could not be opened

	// The supervisor's own ("main").
	ConfigurationClusters  = "configuration.clusters"  // gauge: clusters in the configuration state
	ConfigurationBackends  = "configuration.backends"  // gauge: backends in the configuration state
	ConfigurationFrontends = "configuration.frontends" // gauge: frontends in the configuration state
	Workers                = "workers"                 // ours, gauge: workers in the table
	StatsdSent             = "statsd.datagrams"        // ours, counter: statsd datagrams sent
	StatsdErrors           = "statsd.send_errors"      // ours, counter: statsd datagrams dropped (socket full, peer unreachable)
	Scrapes                = "prometheus.scrapes"      // ours, counter: /metrics answered
	LogTargetDrops         = "logs.target.dropped"     // ours, counter: log records the supervisor's log targets dropped

	// Cluster and backend level.
	Requests              = "requests"                      // counter: requests forwarded (cluster) or sent (backend)
	ConnectionsPerBackend = "connections_per_backend"       // gauge: backend connections in use
	BackendConnectionTime = "backend_connection_time"       // time: TCP connect of new backend connections
	BackendResponseTime   = "backend_response_time"         // time: request sent → response forwarded
	BackendAvailable      = "backend.available"             // gauge: 1 when the backend is in rotation
	BackendUp             = "backend.up"                    // counter: moves into rotation
	BackendDown           = "backend.down"                  // counter: moves out of rotation (marked down)
	HealthyBackends       = "health_check.healthy_backends" // gauge: backends of a health-checked cluster its health check holds healthy (cluster level)
)

// Info describes one metric name.
type Info struct {
	Name string
	Kind Kind
	Help string
}

// ProxyMetrics lists the proxy-level metrics, in the order they are shown.
var ProxyMetrics = []Info{
	{ClientConnections, Gauge, "open client connections"},
	{BackendConnections, Gauge, "open backend connections: in use, or idle in a keep-alive pool (HTTP/2 backends: their connections, not streams)"},
	{AcceptedConnections, Counter, "client connections accepted"},
	{AcceptedHTTP, Counter, "client connections accepted on HTTP listeners"},
	{AcceptedHTTPS, Counter, "client connections accepted on HTTPS listeners"},
	{AcceptedTCP, Counter, "client connections accepted on TCP listeners"},
	{ClientConnectionsMax, Gauge, "max_connections: the client connections a worker holds at most"},
	{HTTPRequests, Counter, "HTTP requests answered (HTTP/1.1 and HTTP/2 streams)"},
	{HTTPErrors, Counter, "answers of the proxy itself with a status of 400 or more, and HTTP/2 requests reset as malformed"},
	{Status1xx, Counter, "responses with a 1xx status"},
	{Status2xx, Counter, "responses with a 2xx status"},
	{Status3xx, Counter, "responses with a 3xx status"},
	{Status4xx, Counter, "responses with a 4xx status"},
	{Status5xx, Counter, "responses with a 5xx status"},
	{StatusOther, Counter, "responses with another status"},
	{BytesIn, Counter, "bytes received from clients: HTTP request heads and bodies, bytes relayed by upgraded connections (WebSocket) and TCP sessions (UDP: udp.bytes.in)"},
	{BytesOut, Counter, "bytes sent to clients: HTTP answers, bytes relayed by upgraded connections (WebSocket) and TCP sessions (UDP: udp.bytes.out)"},
	{TLSv12, Counter, "TLS handshakes that negotiated TLS 1.2"},
	{TLSv13, Counter, "TLS handshakes that negotiated TLS 1.3"},
	{TLSHandshakeErrors, Counter, "TLS handshakes that failed"},
	{H2Connections, Counter, "HTTP/2 connections served"},
	{ALPNHTTP11, Counter, "TLS connections that negotiated http/1.1 or no ALPN protocol"},
	{H2Streams, Counter, "HTTP/2 streams served"},
	{H2FloodViolations, Counter, "HTTP/2 connections closed with GOAWAY(ENHANCE_YOUR_CALM) for breaking a flood budget"},
	{H2StreamResets, Counter, "RST_STREAM frames sent with an error code"},
	{H2Reaped, Counter, "HTTP/2 streams reset for idleness or stall"},
	{H2ActiveStreams, Gauge, "HTTP/2 streams being served now"},
	{RejectedPerIP, Counter, "connections refused by max_connections_per_ip (answered 429)"},
	{AccessLogDrops, Counter, "log records (access records and main log lines) a worker dropped because the log channel to the supervisor, or the access log file it writes, did not keep up"},
	{Panics, Counter, "panics recovered in connection goroutines"},
	{BufferNumber, Gauge, "pooled buffers checked out: HTTP read and output buffers and exchange states of requests in flight, TCP relay buffers"},
	{BufferInUse, Gauge, "buffer.number under upstream's newer name"},
	{BackendConnectErrors, Counter, "backend connects that failed (refused, unreachable, timed out), each attempt"},
	{ProxyProtocolErrors, Counter, "connections closed for a malformed PROXY protocol header (expect_proxy)"},
	{SlabEntries, Gauge, "session slots in use (upstream's slab entries): active listeners, open client connections (HTTP and TCP) and live UDP flows"},
	{Zombies, Gauge, "zombie sessions found (upstream's zombie check): always 0, since every read and write has a deadline"},
	{RequestTime, Time, "time from a request's first byte to the end of its answer, as upstream's and the access record's request time"},
	{ServiceTime, Time, "request_time without the backend's part, the time from the first connect attempt to the backend reached to the end of the answer (the access record's response time): the time the proxy itself spent; all of request_time for a request no backend was reached for. The access record's service time"},
	{TCPRequests, Counter, "TCP sessions relayed to a backend"},
	{HealthCheckSuccess, Counter, "health check probes that passed: an accepted HTTP status, an established connection (TCP), a datagram answered (UDP)"},
	{HealthCheckFailure, Counter, "health check probes that failed: connect error, timeout, HTTP status not accepted"},
	{HealthCheckUp, Counter, "backends the health check put back in rotation after healthy_threshold consecutive successes"},
	{HealthCheckDown, Counter, "backends the health check took out of rotation after unhealthy_threshold consecutive failures"},
	{FailOpen, Counter, "routing decisions that found no backend of the cluster in rotation and sent the request, session or flow to one out of it (fail open)"},
	{UDPDatagramsIn, Counter, "UDP datagrams relayed from clients to backends"},
	{UDPDatagramsOut, Counter, "UDP replies relayed from backends to clients"},
	{UDPBytesIn, Counter, "payload bytes of the UDP datagrams relayed to backends (PROXY headers not counted)"},
	{UDPBytesOut, Counter, "payload bytes of the UDP replies relayed to clients"},
	{UDPActiveFlows, Gauge, "live UDP flows"},
	{UDPFlowsCreated, Counter, "UDP flows opened"},
	{UDPDropped, Counter, "UDP datagrams dropped, every cause (the sum of the udp.datagrams.dropped.* counters)"},
	{UDPDroppedTruncated, Counter, "UDP datagrams over max_rx_datagram_size dropped, from clients or backends, and client datagrams that a PROXY header would push over the largest UDP payload"},
	{UDPDroppedInvalid, Counter, "UDP datagrams dropped: empty client datagrams, which start no flow and are not relayed"},
	{UDPDroppedNoBackend, Counter, "UDP datagrams dropped: no cluster on the listener, or no backend for a new flow"},
	{UDPDroppedShed, Counter, "UDP datagrams dropped: a new flow refused, the flow table full of active flows, or the worker's UDP flows holding 70 % of its open-file limit"},
	{UDPDroppedSourceCap, Counter, "UDP datagrams dropped: a new flow refused, its client source (IPv4 address, IPv6 /64) holding its share of the flow table"},
	{UDPDroppedLoop, Counter, "UDP datagrams dropped: their source is the address of the listener, of another UDP listener of the worker, or of a backend of its cluster (spoofed), whose flow would relay replies in a loop"},
	{UDPDroppedSocketFail, Counter, "UDP datagrams dropped: the new flow's backend socket could not be opened"},
}

// H2FloodClasses names the HTTP/2 flood budgets, in worker/h2's FloodClass
// order (a worker test checks the two agree); each has a counter
// H2Flood(class) of the connections closed for breaking it, beside the
// total H2FloodViolations.
var H2FloodClasses = []string{"other", "rapid_reset", "made_you_reset", "continuation", "headers",
	"ping", "settings", "empty_data", "window_update", "glitch_window", "control_backlog", "priority"}

// H2FloodKinds names, in worker/h2's ViolationKind order (KindNone left
// out), the finer h2.flood.violation.<kind> counters upstream's flood
// detector emits (its doc/architecture.md): each counts the connections
// closed for breaking that threshold, beside the class counters of
// H2FloodClasses (upstream's glitch_window is one of those).
var H2FloodKinds = []string{"rst_stream_window", "rst_stream_lifetime", "rst_stream_pre_response_lifetime",
	"rst_stream_emitted_lifetime", "ping_window", "ping_lifetime", "settings_window", "settings_lifetime",
	"empty_data_window", "continuation_per_block", "window_update_stream0_window", "header_size_per_block"}

// The statuses with counters of their own (upstream's http_status and
// http modules): http.status.<code> counts every answer with one of
// StatusCodes, http.<code>.errors the proxy's own answers with one of
// AnswerErrorCodes, http.<code>.redirection its redirections with one of
// RedirectionCodes. Other statuses count only in their class
// (http.status.4xx…).
var (
	StatusCodes      = []int{200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 507}
	AnswerErrorCodes = []int{400, 401, 404, 408, 413, 421, 502, 503, 504, 507}
	RedirectionCodes = []int{301, 302, 308}
)

// StatusCode, AnswerError and Redirection name the counters of one status.
func StatusCode(code int) string  { return "http.status." + strconv.Itoa(code) }
func AnswerError(code int) string { return "http." + strconv.Itoa(code) + ".errors" }
func Redirection(code int) string { return "http." + strconv.Itoa(code) + ".redirection" }

// H2Flood is the name of the counter of class (one of H2FloodClasses).
func H2Flood(class string) string { return "h2.flood.violation." + class }

func init() {
	for _, c := range StatusCodes {
		ProxyMetrics = append(ProxyMetrics, Info{StatusCode(c), Counter, "answers with status " + strconv.Itoa(c)})
	}
	for _, c := range AnswerErrorCodes {
		ProxyMetrics = append(ProxyMetrics, Info{AnswerError(c), Counter, "answers of the proxy itself with status " + strconv.Itoa(c)})
	}
	for _, c := range RedirectionCodes {
		ProxyMetrics = append(ProxyMetrics, Info{Redirection(c), Counter, "redirections of the proxy itself with status " + strconv.Itoa(c)})
	}
	for _, c := range H2FloodClasses {
		ProxyMetrics = append(ProxyMetrics, Info{H2Flood(c), Counter,
			"HTTP/2 connections closed with GOAWAY(ENHANCE_YOUR_CALM) for breaking the " + c + " budget"})
	}
	for _, k := range H2FloodKinds {
		ProxyMetrics = append(ProxyMetrics, Info{H2Flood(k), Counter,
			"HTTP/2 connections closed with GOAWAY(ENHANCE_YOUR_CALM) for breaking upstream's " + k + " threshold (also in its class)"})
	}
}

// MainMetrics lists the supervisor's own metrics ("main").
var MainMetrics = []Info{
	{ConfigurationClusters, Gauge, "clusters in the configuration state"},
	{ConfigurationBackends, Gauge, "backends in the configuration state"},
	{ConfigurationFrontends, Gauge, "frontends in the configuration state"},
	{Workers, Gauge, "workers in the supervisor's table"},
	{StatsdSent, Counter, "statsd datagrams sent"},
	{StatsdErrors, Counter, "statsd datagrams dropped: the socket could not take them at once, or the peer is unreachable"},
	{Scrapes, Counter, "Prometheus scrapes of /metrics answered"},
	{LogTargetDrops, Counter, "log records (the workers' access records and main log lines it writes, its own lines) the supervisor's log targets dropped: the target slow, stalled or unreachable, or a write failed"},
}

// ClusterMetrics lists the metrics of a cluster, and of a backend (the
// backend ones are marked).
var ClusterMetrics = []Info{
	{Requests, Counter, "requests routed to the cluster or sent to the backend (TCP: sessions relayed; UDP: flows opened)"},
	{Status1xx, Counter, "responses with a 1xx status"},
	{Status2xx, Counter, "responses with a 2xx status"},
	{Status3xx, Counter, "responses with a 3xx status"},
	{Status4xx, Counter, "responses with a 4xx status"},
	{Status5xx, Counter, "responses with a 5xx status"},
	{StatusOther, Counter, "responses with another status"},
	{BytesIn, Counter, "request bytes of the cluster's or backend's requests (TCP: bytes from the client; UDP: payload bytes of the datagrams in)"},
	{BytesOut, Counter, "response bytes of the cluster's or backend's requests (TCP: bytes to the client; UDP: payload bytes of the replies)"},
	{UDPDatagramsIn, Counter, "UDP datagrams relayed to the cluster's or backend's flows"},
	{UDPDatagramsOut, Counter, "UDP replies relayed from the cluster's or backend's flows"},
	{UDPActiveFlows, Gauge, "live UDP flows of the cluster or backend"},
	{ConnectionsPerBackend, Gauge, "backend connections in use (backend level only)"},
	{BackendAvailable, Gauge, "1 when the backend is in rotation (backend level only)"},
	{BackendUp, Counter, "moves of the backend into rotation: back up after being marked down (backend level only)"},
	{BackendDown, Counter, "moves of the backend out of rotation: marked down by failed connects or the health check (backend level only)"},
	{HealthyBackends, Gauge, "backends the health check holds healthy, for a cluster with a health check (cluster level only; merged over workers by its maximum)"},
	{BackendConnectionTime, Time, "TCP connect time of new backend connections"},
	{BackendResponseTime, Time, "time from the request sent to the backend to the end of the response"},
	{RequestTime, Time, "time from a request's first byte to the end of its answer, as at the proxy level (cluster level only)"},
	{ServiceTime, Time, "request_time without the backend's part, as at the proxy level: the time the proxy itself spent (cluster level only)"},
}

// Lookup returns the information on name at the proxy and main (cluster
// false) or cluster level, and whether it is known.
func Lookup(name string, cluster bool) (Info, bool) {
	l := append(ProxyMetrics[:len(ProxyMetrics):len(ProxyMetrics)], MainMetrics...)
	if cluster {
		l = ClusterMetrics
	}
	for _, i := range l {
		if i.Name == name {
			return i, true
		}
	}
	return Info{}, false
}

// MaxOverWorkers reports whether the gauge name merges over workers by
// its maximum rather than its sum: a backend is available in the
// aggregate when it is in some worker; each worker probes every backend
// of a health-checked cluster, so a sum of healthy backends would count
// each once per worker.
func MaxOverWorkers(name string) bool { return name == BackendAvailable || name == HealthyBackends }

// StatusName returns the status class counter of an HTTP status.
func StatusName(status int) string {
	switch status / 100 {
	case 1:
		return Status1xx
	case 2:
		return Status2xx
	case 3:
		return Status3xx
	case 4:
		return Status4xx
	case 5:
		return Status5xx
	}
	return StatusOther
}
