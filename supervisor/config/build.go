package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/logfilter"
)

// maxSocketPath is the longest unix socket path (sun_path holds 108 bytes
// including the terminating NUL).
const maxSocketPath = 107

// builder validates a defaulted rawConfig and builds the Config and its
// requests. Every problem goes to errs; building goes on after one so that
// all problems are reported together.
type builder struct {
	errs  *errorList
	notes []Note // what the build adds to implicitListeners' notes
	// warnings: values not in force the build finds (tlsPolicy), besides
	// checkForce's keys.
	warnings []Warning
	dir      string // directory of the configuration file (absolute)
	cfg      *Config

	listeners []*listenerInfo                  // file order
	stream    map[netip.AddrPort]*listenerInfo // http, https and tcp listeners
	udp       map[netip.AddrPort]*listenerInfo
	routes    map[string]string         // http(s) frontend key -> its key path
	tcpOwner  map[netip.AddrPort]string // tcp/udp listener -> cluster using it
	implicit  map[*rawListener]string   // listener created for a frontend -> the frontend's key path

	// noFiles: read and check no file the configuration names (LoadSettings,
	// LoadClient).
	noFiles bool
}

type listenerInfo struct {
	path        string
	protocol    ListenerProtocol
	addr        netip.AddrPort
	expectProxy bool
	h2          bool   // https listener advertising h2
	sticky      bool   // a cluster with sticky_session has a frontend on it
	idHeader    string // sozu_id_header of an http or https listener, "" for the default
}

func (b *builder) build(r *rawConfig) {
	b.stream = map[netip.AddrPort]*listenerInfo{}
	b.udp = map[netip.AddrPort]*listenerInfo{}
	b.routes = map[string]string{}
	b.tcpOwner = map[netip.AddrPort]string{}

	b.globals(r)
	b.security(r)
	for i, l := range r.Listeners {
		p := joinIndex("listeners", i)
		if fp, ok := b.implicit[l]; ok {
			p = fp
		}
		b.listener(p, l)
	}
	b.checkH2Buffers()
	ids := make([]string, 0, len(r.Clusters))
	for id := range r.Clusters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b.cluster(id, r.Clusters[id])
	}
	b.stickyNameUnused()
	if b.cfg.ActivateListeners {
		for _, l := range b.listeners {
			b.emit(&command.Request{RequestType: &command.Request_ActivateListener{ActivateListener: &command.ActivateListener{
				Address: command.NewSocketAddress(l.addr),
				Proxy:   l.protocol.listenerType().Enum(),
				FromScm: proto.Bool(false),
			}}})
		}
	}
	if b.cfg.DisableClusterMetrics {
		b.emit(&command.Request{RequestType: &command.Request_ConfigureMetrics{ConfigureMetrics: command.MetricsConfiguration_DISABLED}})
	}
	b.cfg.server = b.serverConfig(r)
}

// stickyNameUnused reports a sticky_name written on a listener where no
// cluster with sticky_session has a frontend: the cookie is read and set
// for those clusters only (worker/proxy sticky.go).
func (b *builder) stickyNameUnused() {
	for _, l := range b.listeners {
		if !l.sticky {
			b.warn(joinKey(l.path, "sticky_name"), Unused,
				"no cluster with sticky_session = true has a frontend on this listener: the cookie is used for those only")
		}
	}
}

func (b *builder) emit(r *command.Request) { b.cfg.requests = append(b.cfg.requests, r) }

// globals checks and copies the top-level keys.
func (b *builder) globals(r *rawConfig) {
	c := b.cfg
	b.commandChannel(r)
	if r.CommandAllowedUIDs != nil {
		if len(*r.CommandAllowedUIDs) == 0 {
			b.errs.at("command_allowed_uids", "an empty list refuses every request; leave the key out to allow any local user")
		}
		c.CommandAllowedUIDs = slices.Clone(*r.CommandAllowedUIDs)
	}

	if r.SavedState != nil {
		c.SavedState = b.file("saved_state", *r.SavedState)
		b.checkTarget("saved_state", *r.SavedState, c.SavedState, stateTarget)
	}
	c.AutomaticStateSave = *r.AutomaticStateSave
	if c.AutomaticStateSave && r.SavedState == nil {
		b.errs.at("automatic_state_save", "needs saved_state, the file to save to")
	}
	if r.PidFilePath != nil {
		c.PidFilePath = b.file("pid_file_path", *r.PidFilePath)
	}

	c.WorkerCount = int(*r.WorkerCount)
	if c.WorkerCount < 1 || c.WorkerCount > maxWorkerCount {
		b.errs.at("worker_count", "must be between 1 and %d, not %d", maxWorkerCount, c.WorkerCount)
	}
	c.WorkerThreads = int(*r.WorkerThreads)
	if c.WorkerThreads > maxWorkerThreads {
		b.errs.at("worker_threads", "must be between 0 (one per CPU) and %d, not %d", maxWorkerThreads, c.WorkerThreads)
	}
	c.WorkerAutomaticRestart = *r.WorkerAutomaticRestart
	c.WorkerTimeout = b.seconds("worker_timeout", *r.WorkerTimeout)
	c.SoftStopDeadline = b.seconds("soft_stop_deadline", *r.SoftStopDeadline)
	c.HandleProcessAffinity = *r.HandleProcessAffinity
	c.ActivateListeners = *r.ActivateListeners

	c.LogLevel = *r.LogLevel
	if !validLogLevel(c.LogLevel) {
		b.errs.at("log_level", "invalid log level %q: want error, warn, info, debug, trace or off, optionally per module (module=level, comma separated)", c.LogLevel)
	} else if note := logfilter.Note(c.LogLevel); note != "" {
		b.warn("log_level", Meaningless, note)
	}
	c.LogTarget = b.logTarget("log_target", *r.LogTarget)
	b.logFile("log_target", c.LogTarget)
	c.LogColored = *r.LogColored
	if r.AccessLogsTarget != nil {
		c.AccessLogsTarget = b.logTarget("access_logs_target", *r.AccessLogsTarget)
		b.logFile("access_logs_target", c.AccessLogsTarget)
	}
	c.AccessLogsFormat = command.ProtobufAccessLogFormat(*r.AccessLogsFormat)
	c.AccessLogsEncoding = strings.ToLower(c.AccessLogsFormat.String())
	if *r.AccessLogsFormat == accessLogJSON {
		c.AccessLogsFormat, c.AccessLogsEncoding = command.ProtobufAccessLogFormat_Ascii, "json"
	}
	c.AccessLogsQuery = string(*r.AccessLogsQuery)
	c.AccessLogsColored = *r.AccessLogsColored
	if r.AuditLogsTarget != nil {
		c.AuditLogsTarget = b.auditTarget("audit_logs_target", *r.AuditLogsTarget)
	}
	if r.AuditLogsJSONTarget != nil {
		c.AuditLogsJSONTarget = b.auditTarget("audit_logs_json_target", *r.AuditLogsJSONTarget)
	}

	c.MaxConnections = *r.MaxConnections
	b.atLeast("max_connections", c.MaxConnections, 1)
	c.MaxBuffers = *r.MaxBuffers
	b.atLeast("max_buffers", c.MaxBuffers, 1)
	c.MinBuffers = min(*r.MinBuffers, c.MaxBuffers) // upstream clamps too
	c.BufferSize = *r.BufferSize
	b.atLeast("buffer_size", c.BufferSize, 1)
	c.FrontTimeout = b.seconds("front_timeout", *r.FrontTimeout)
	c.BackTimeout = b.seconds("back_timeout", *r.BackTimeout)
	c.ConnectTimeout = b.seconds("connect_timeout", *r.ConnectTimeout)
	c.RequestTimeout = b.seconds("request_timeout", *r.RequestTimeout)
	c.ZombieCheckInterval = b.seconds("zombie_check_interval", *r.ZombieCheckInterval)
	c.AcceptQueueTimeout = b.seconds("accept_queue_timeout", *r.AcceptQueueTimeout)
	c.EvictOnQueueFull = *r.EvictOnQueueFull
	c.MaxConnectionsPerIP = *r.MaxConnectionsPerIP
	c.RetryAfter = *r.RetryAfter
	if r.SlabEntriesPerConnection != nil && *r.SlabEntriesPerConnection != 0 {
		c.SlabEntriesPerConnection = min(max(*r.SlabEntriesPerConnection, minSlabEntriesPerConnection), maxSlabEntriesPerConnection)
	}
	if r.BasicAuthMaxCredentialBytes != nil {
		c.BasicAuthMaxCredentialBytes = *r.BasicAuthMaxCredentialBytes
	}
	if r.SplicePipeCapacityBytes != nil {
		c.SplicePipeCapacityBytes = *r.SplicePipeCapacityBytes
	}

	if m := r.Metrics; m != nil {
		c.Metrics = &Metrics{TaggedMetrics: *m.TaggedMetrics, Detail: command.MetricDetail(*m.Detail)}
		if m.Prefix != nil {
			c.Metrics.Prefix = *m.Prefix
			if strings.ContainsFunc(c.Metrics.Prefix, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(":|,=@#", r) }) {
				b.errs.at(joinKey("metrics", "prefix"), "%q may not hold whitespace, control characters or any of : | , = @ # (they would forge statsd lines)", c.Metrics.Prefix)
			}
		}
		switch {
		case m.Address != nil:
			if m.Address.Port() == 0 || m.Address.Addr().IsUnspecified() {
				b.errs.at(joinKey("metrics", "address"), "%s is not an address to send to", m.Address.AddrPort)
			}
			c.Metrics.Address = m.Address.AddrPort
		case m.PrometheusAddress == nil && !b.errs.bad[joinKey("metrics", "address")]:
			b.errs.at("metrics", "missing required key %q (or %q)", "address", "prometheus_address")
		}
		if m.PrometheusAddress != nil {
			c.Metrics.Prometheus = b.prometheusAddress(*m.PrometheusAddress)
		}
	}
	c.DisableClusterMetrics = *r.DisableClusterMetrics
	if c.DisableClusterMetrics && c.Metrics != nil && c.Metrics.Detail >= command.MetricDetail_DETAIL_CLUSTER {
		b.warn("metrics.detail", Unused, "disable_cluster_metrics = true: the proxy level only is recorded and sent (until `sozu metrics enable`)")
	}
}

func (b *builder) serverConfig(r *rawConfig) *command.ServerConfig {
	c := b.cfg
	s := &command.ServerConfig{
		MaxConnections:       proto.Uint64(c.MaxConnections),
		FrontTimeout:         r.FrontTimeout,
		BackTimeout:          r.BackTimeout,
		ConnectTimeout:       r.ConnectTimeout,
		ZombieCheckInterval:  r.ZombieCheckInterval,
		AcceptQueueTimeout:   r.AcceptQueueTimeout,
		MinBuffers:           proto.Uint64(c.MinBuffers),
		MaxBuffers:           proto.Uint64(c.MaxBuffers),
		BufferSize:           proto.Uint64(c.BufferSize),
		LogLevel:             proto.String(c.LogLevel),
		LogTarget:            proto.String(c.LogTarget),
		CommandBufferSize:    proto.Uint64(c.CommandBufferSize),
		MaxCommandBufferSize: proto.Uint64(c.MaxCommandBufferSize),
		AccessLogFormat:      c.AccessLogsFormat.Enum(),
		LogColored:           proto.Bool(c.LogColored),
		EvictOnQueueFull:     proto.Bool(c.EvictOnQueueFull),
		MaxConnectionsPerIp:  proto.Uint64(c.MaxConnectionsPerIP),
		RetryAfter:           proto.Uint32(c.RetryAfter),
	}
	if c.AccessLogsTarget != "" {
		s.AccessLogsTarget = proto.String(c.AccessLogsTarget)
	}
	if c.AuditLogsTarget != "" {
		s.AuditLogsTarget = proto.String(c.AuditLogsTarget)
	}
	if c.AuditLogsJSONTarget != "" {
		s.AuditLogsJsonTarget = proto.String(c.AuditLogsJSONTarget)
	}
	if c.SlabEntriesPerConnection != 0 {
		s.SlabEntriesPerConnection = proto.Uint64(c.SlabEntriesPerConnection)
	}
	if c.BasicAuthMaxCredentialBytes != 0 {
		s.BasicAuthMaxCredentialBytes = proto.Uint64(c.BasicAuthMaxCredentialBytes)
	}
	if c.SplicePipeCapacityBytes != 0 {
		s.SplicePipeCapacityBytes = proto.Uint64(c.SplicePipeCapacityBytes)
	}
	if m := c.Metrics; m != nil && m.Address.IsValid() {
		s.Metrics = &command.ServerMetricsConfig{
			Address:       proto.String(m.Address.String()),
			TaggedMetrics: proto.Bool(m.TaggedMetrics),
			Detail:        m.Detail.Enum(),
		}
		if m.Prefix != "" {
			s.Metrics.Prefix = proto.String(m.Prefix)
		}
	}
	return s
}

// checkH2Buffers refuses buffers too small for a full HTTP/2 frame when an
// https listener offers h2 (upstream's rule).
func (b *builder) checkH2Buffers() {
	if b.cfg.BufferSize >= minH2BufferSize {
		return
	}
	var h2 []string
	for _, l := range b.listeners {
		if l.h2 {
			h2 = append(h2, l.path)
		}
	}
	if len(h2) > 0 {
		b.errs.at("buffer_size", "%d is below %d, the smallest buffer holding a full HTTP/2 frame, and %s offer h2; raise buffer_size or drop h2 from alpn_protocols",
			b.cfg.BufferSize, minH2BufferSize, strings.Join(h2, ", "))
	}
}

// Helpers shared by the checks.

// warn records a warning at key path kp when the file writes it (a key
// left to its default is not the operator's doing), and reports whether
// it did.
func (b *builder) warn(kp string, class Class, why string) bool {
	return b.warnProtecting(kp, class, why, "")
}

// warnProtecting is warn for a key configuring protection (protectionOf's
// names), which sozu compliance fails rather than warns about.
func (b *builder) warnProtecting(kp string, class Class, why, protection string) bool {
	at, ok := b.errs.pos.keyAt(kp)
	if ok {
		b.warnings = append(b.warnings, Warning{File: b.errs.file, Line: at.line, Col: at.col, Key: kp, Class: class, Why: why, Protection: protection})
	}
	return ok
}

// written reports whether the file gave key path p.
func (b *builder) written(p string) bool {
	_, ok := b.errs.pos.keyAt(p)
	return ok
}

// required reports a missing key under p, unless that key was present with
// a bad value (already reported).
// prometheusAddress checks [metrics] prometheus_address: "ip:port" or
// "unix:/absolute/path". An address other than loopback is accepted (the
// operator wrote it) and noted: /metrics then answers the network.
func (b *builder) prometheusAddress(v string) string {
	p := joinKey("metrics", "prometheus_address")
	if path, ok := strings.CutPrefix(v, "unix:"); ok {
		if !filepath.IsAbs(path) {
			b.errs.at(p, "unix socket path %q is not absolute", path)
		}
		return v
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(v))
	if err != nil || ap.Port() == 0 {
		b.errs.at(p, "invalid address %q: want ip:port (a port from 1 to 65535) or unix:/absolute/path", v)
		return v
	}
	if !ap.Addr().IsLoopback() {
		at := b.errs.pos.key(p)
		b.notes = append(b.notes, Note{File: b.errs.file, Line: at.line, Col: at.col, Key: p,
			Msg: fmt.Sprintf("%s is not a loopback address: the supervisor serves /metrics (cluster and backend ids, traffic figures) to the network", ap)})
	}
	return ap.String()
}

func (b *builder) required(p, key string) {
	if !b.errs.bad[joinKey(p, key)] {
		b.errs.at(p, "missing required key %q", key)
	}
}

func (b *builder) atLeast(p string, v, least uint64) {
	if v < least {
		b.errs.at(p, "must be at least %d", least)
	}
}

// seconds checks a timeout in seconds, which may not be zero.
func (b *builder) seconds(p string, v uint32) time.Duration {
	if v == 0 {
		b.errs.at(p, "must be at least 1 (seconds)")
	}
	return time.Duration(v) * time.Second
}

// logTarget checks a log destination URI.
func (b *builder) logTarget(p, t string) string {
	if t == "stdout" || t == "stderr" {
		return t
	}
	for _, scheme := range []string{"udp://", "tcp://", "unix://", "file://"} {
		rest, ok := strings.CutPrefix(t, scheme)
		if !ok || rest == "" {
			continue
		}
		if scheme == "udp://" || scheme == "tcp://" {
			host, port, err := net.SplitHostPort(rest)
			if n, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || n == 0 {
				b.errs.at(p, "invalid log target %q: want %shost:port, with a port from 1 to 65535", t, scheme)
			}
		}
		if scheme == "unix://" && len(rest) > maxSocketPath {
			// connect(2) would refuse it with a bare EINVAL on every
			// attempt, long after start.
			b.errs.at(p, "invalid log target %q: socket path is %d bytes long; unix sockets allow at most %d",
				t, len(rest), maxSocketPath)
		}
		return t
	}
	b.errs.at(p, "invalid log target %q: want stdout, stderr, udp://host:port, tcp://host:port, unix://path or file://path", t)
	return t
}

// validLogLevel accepts an env_logger-style filter: comma-separated
// directives, each a level or module=level (see worker/logfilter).
func validLogLevel(s string) bool {
	_, err := logfilter.Parse(s)
	return err == nil
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// hasControl reports a C0 control (other than tab) or DEL in s.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f })
}

// printable reports whether s is non-empty and has no space or control.
func printable(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

func validStatus(code string) bool {
	return len(code) == 3 && code[0] >= '1' && code[0] <= '5' &&
		code[1] >= '0' && code[1] <= '9' && code[2] >= '0' && code[2] <= '9'
}

// answers loads an answers map: each value is a template, or file://path to
// read one; empty values are skipped (upstream's "keep the current one").
// cluster says whether the map is a cluster's.
func (b *builder) answers(p string, m map[string]string, cluster bool) map[string]string {
	out := map[string]string{}
	for _, code := range sortedKeys(m) {
		kp := joinKey(p, code)
		if !validStatus(code) {
			b.errs.atKey(kp, "answer keys are HTTP status codes (100-599), not %q", code)
			continue
		}
		b.neverAnswered(kp, code, cluster)
		v := m[code]
		if v == "" {
			continue
		}
		if name, ok := strings.CutPrefix(v, "file://"); ok {
			if body, ok := b.readAnswer(kp, name); ok {
				out[code] = body
			}
			continue
		}
		out[code] = v
	}
	return out
}

// why507 says what answers here where upstream answers 507.
const why507 = "upstream's 507 is a request or response larger than its buffers: here a head too large is " +
	"414 or 431, a request body over its limit 413"

// neverAnswered reports, at key path kp when written, a custom answer
// that would never be sent (answers.Unsent): for a status the proxy never
// answers itself (upstream's 507, a 200…), or, in a cluster's answers
// (cluster), one it answers only before a request reaches a cluster (404,
// 421, 431…).
func (b *builder) neverAnswered(kp, code string, cluster bool) {
	n, err := strconv.Atoi(code)
	if err != nil {
		return
	}
	why := answers.Unsent(n, cluster)
	if why == "" {
		return
	}
	if code == "507" {
		why += "; " + why507
	}
	b.warn(kp, Meaningless, why)
}

// compileAnswers reports, at at(code), each answer template of m that
// workers would not compile (they would send their default answer): with
// worker/answers, their own compiler.
func (b *builder) compileAnswers(m map[string]string, at func(code string) string) {
	_, errs := answers.NewSet(m)
	for _, err := range errs {
		var ke *answers.KeyError
		if errors.As(err, &ke) && !b.errs.bad[at(ke.Key)] {
			b.errs.at(at(ke.Key), "%v", ke.Err)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// auditTarget is a file path (resolved like other paths and checked as a
// sink, see checkTarget), or "stdout" or "stderr" kept as they are.
func (b *builder) auditTarget(p, v string) string {
	if v == "stdout" || v == "stderr" {
		return v
	}
	abs := b.file(p, v)
	b.checkTarget(p, v, abs, sinkTarget) // nothing with noFiles (the CLI's read)
	return abs
}
