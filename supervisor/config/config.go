// Package config reads Sōzu's TOML configuration (upstream key names),
// validates it, and turns it into the request list that builds the initial
// state plus the ServerConfig each worker boots with.
//
// Load and Parse report every problem at once (see Errors), each naming the
// file, line and column when known, and the dotted key path. Relative file
// paths in the configuration (command_socket, saved_state, pid_file_path,
// audit_logs_target, audit_logs_json_target, answer_* files, certificate,
// certificate_chain, key, "file://" answers) resolve against the directory of
// the configuration file, not the working directory. Log targets are URIs
// (stdout, udp://…, tcp://…, unix://…, file://…) and are kept as written.
//
// Parse reads the files the configuration names (answers, certificates,
// keys) and checks, without opening them for reading or writing, the ones
// the supervisor uses later (audit sinks and their directories, the audit
// HMAC key, saved_state, absolute file:// log targets): it creates no file
// and no directory. Every such path is opened without following symbolic
// links and held to rules per kind of file (package safefile, and
// docs/configuration.md). Documents over MaxConfigSize, nesting deeper than
// 64 levels or with a key longer than 256 bytes are refused before the TOML
// parser runs.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// Config is a validated configuration with every default applied. It is
// immutable after Parse returns and safe for concurrent use; the messages
// returned by its methods are fresh copies the caller owns.
type Config struct {
	Path string // absolute path of the configuration file

	CommandSocket        string   // absolute path of the unix command socket
	CommandBufferSize    uint64   // initial channel buffer, bytes
	MaxCommandBufferSize uint64   // largest frame and channel buffer, bytes
	CommandAllowedUIDs   []uint32 // UIDs with the admin role; see Admission
	CtlCommandTimeout    time.Duration

	SavedState         string // absolute path, or "" when not configured
	AutomaticStateSave bool
	PidFilePath        string // absolute path, or ""

	WorkerCount            int
	WorkerThreads          int // GOMAXPROCS of each worker (worker_threads); 0 = Go's default, one per CPU
	WorkerAutomaticRestart bool
	WorkerTimeout          time.Duration // fan-out deadline per worker; a worker silent for 3 × it is replaced
	SoftStopDeadline       time.Duration // a soft stop closes what remains and exits at it
	HandleProcessAffinity  bool          // accepted, not implemented
	ActivateListeners      bool

	LogLevel            string
	LogTarget           string
	LogColored          bool
	AccessLogsTarget    string                          // "" = no separate access log target
	AccessLogsFormat    command.ProtobufAccessLogFormat // Ascii for json (the schema has no json)
	AccessLogsEncoding  string                          // what workers write: ascii, protobuf or json
	AccessLogsQuery     string                          // query values in access logs: mask, keep or drop
	AccessLogsColored   bool
	AuditLogsTarget     string // absolute path, or ""
	AuditLogsJSONTarget string // absolute path, or ""

	MaxConnections              uint64
	MinBuffers                  uint64
	MaxBuffers                  uint64
	BufferSize                  uint64
	FrontTimeout                time.Duration
	BackTimeout                 time.Duration
	ConnectTimeout              time.Duration
	RequestTimeout              time.Duration
	ZombieCheckInterval         time.Duration
	AcceptQueueTimeout          time.Duration
	EvictOnQueueFull            bool
	MaxConnectionsPerIP         uint64 // 0 = unlimited
	RetryAfter                  uint32 // seconds; 0 = no Retry-After header
	SlabEntriesPerConnection    uint64 // 0 = worker default
	BasicAuthMaxCredentialBytes uint64 // 0 = worker default
	SplicePipeCapacityBytes     uint64 // 0 = kernel default; capacity of the TCP relays' splice pipes

	Admission Admission
	Audit     Audit
	Sandbox   Sandbox

	Metrics               *Metrics // nil when no [metrics] table
	DisableClusterMetrics bool

	// Listeners in file order, then those created for frontends without
	// one (see Notes); the supervisor binds these.
	Listeners []Listener

	// Warnings lists the keys written in the file that are not in force
	// (see truth.go), in file order. `config check` and `start` print
	// them; `config check --strict` fails on any.
	Warnings []Warning

	// Notes lists what the configuration does that the file does not
	// spell out (see Note), in cluster id then file order. `config check`
	// and `start` print them.
	Notes []Note

	requests []*command.Request // Requests() content, in order
	server   *command.ServerConfig
	raw      *rawConfig // the decoded file, defaults applied (RestartChanges)
}

// Metrics is the [metrics] table: where to send StatsD metrics, and
// where the supervisor serves Prometheus' /metrics.
type Metrics struct {
	Address       netip.AddrPort // statsd; invalid (zero) when not written
	TaggedMetrics bool
	Prefix        string
	Detail        command.MetricDetail
	// Prometheus is "ip:port" or "unix:/absolute/path"; "" for none.
	Prometheus string
}

// Listener is one [[listeners]] entry.
type Listener struct {
	Protocol ListenerProtocol
	Address  netip.AddrPort
}

// MaxConfigSize is the largest configuration file Load and Parse accept.
const MaxConfigSize = 16 << 20

// Load reads the configuration file at path and parses it (see Parse).
// The file must be a regular file of at most MaxConfigSize bytes: a FIFO
// or a device is refused at once (it is opened O_NONBLOCK and checked
// before any read). Unlike the files the configuration names, path may
// go through symbolic links: the operator gave it on the command line.
func Load(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, Errors{&Error{File: path, Msg: "cannot read configuration: " + err.Error(), Err: err}}
	}
	return Parse(data, path)
}

// readConfig reads the configuration file at path.
func readConfig(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	switch t := st.Mode & unix.S_IFMT; {
	case t == unix.S_IFDIR:
		return nil, errors.New("is a directory, not a regular file")
	case t == unix.S_IFCHR:
		return nil, errors.New("is a character device, not a regular file")
	case t == unix.S_IFIFO:
		return nil, errors.New("is a FIFO, not a regular file")
	case t != unix.S_IFREG:
		return nil, fmt.Errorf("is not a regular file (type %#o)", t)
	case st.Size > MaxConfigSize:
		return nil, fmt.Errorf("is %d bytes long: the limit is %d MiB", st.Size, MaxConfigSize>>20)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// Parse decodes, checks and builds a configuration. path names the file in
// error messages and anchors relative paths (see the package comment); it
// need not exist. On failure the error is an Errors listing every problem;
// each matches ErrInvalid.
func Parse(data []byte, path string) (*Config, error) {
	return parse(data, path, false)
}

// LoadSettings reads the configuration file at path like Load, but opens
// no file the configuration names (certificates, keys, answers, audit
// targets, saved_state): the settings it returns are those of the file
// itself, for a report an operator who may not read the proxy's keys can
// still run (`sozu compliance`). Its requests lack what those files hold:
// it never starts a proxy.
func LoadSettings(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, Errors{&Error{File: path, Msg: "cannot read configuration: " + err.Error(), Err: err}}
	}
	return parse(data, path, true)
}

func parse(data []byte, path string, noFiles bool) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, Errors{&Error{File: path, Msg: fmt.Sprintf("cannot resolve path: %v", err), Err: err}}
	}
	raw, errs, err := decode(data, path)
	if err != nil {
		return nil, err
	}
	checkScopes(errs, raw)
	warnings := checkForce(errs, raw)
	origin, notes := implicitListeners(errs, raw)
	mergeMetricsKeys(errs, raw)
	applyDefaults(raw)
	applySecurityDefaults(raw)
	b := &builder{errs: errs, dir: filepath.Dir(abs), cfg: &Config{Path: abs}, implicit: origin, noFiles: noFiles}
	b.build(raw)
	if err := errs.result(); err != nil {
		return nil, err
	}
	b.cfg.Warnings = append(warnings, b.warnings...)
	sortWarnings(b.cfg.Warnings)
	b.cfg.Notes = append(notes, b.notes...)
	b.cfg.raw = raw
	return b.cfg, nil
}

// Requests returns the requests that build the initial state, with ids
// CONFIG-0, CONFIG-1, …: every listener in file order; then per cluster, in
// ascending id order, ADD_CLUSTER, its frontends in file order
// (ADD_CERTIFICATE + ADD_HTTPS_FRONTEND for a frontend with its own
// certificate, ADD_HTTPS_FRONTEND on an https listener, ADD_HTTP_FRONTEND,
// ADD_TCP_FRONTEND or ADD_UDP_FRONTEND otherwise) and its backends; then
// ACTIVATE_LISTENER for every listener when activate_listeners is set; then
// CONFIGURE_METRICS(DISABLED) when disable_cluster_metrics is set. Two calls
// return equal lists.
func (c *Config) Requests() []*command.WorkerRequest {
	out := make([]*command.WorkerRequest, len(c.requests))
	for i, r := range c.requests {
		out[i] = &command.WorkerRequest{
			Id:      proto.String(fmt.Sprintf("CONFIG-%d", i)),
			Content: proto.CloneOf(r),
		}
	}
	return out
}

// ServerConfig returns the first frame a new worker receives, with every
// required field set.
func (c *Config) ServerConfig() *command.ServerConfig {
	return proto.CloneOf(c.server)
}

// mergeMetricsKeys folds [metrics] disable_cluster_metrics into the
// top-level key (upstream's place): either may be written; both, only
// with the same value.
func mergeMetricsKeys(errs *errorList, c *rawConfig) {
	m := c.Metrics
	if m == nil || m.DisableClusterMetrics == nil {
		return
	}
	if c.DisableClusterMetrics != nil && *c.DisableClusterMetrics != *m.DisableClusterMetrics {
		errs.at("metrics.disable_cluster_metrics", "is %v but the top-level disable_cluster_metrics is %v: write it once", *m.DisableClusterMetrics, *c.DisableClusterMetrics)
		return
	}
	v := *m.DisableClusterMetrics
	c.DisableClusterMetrics = &v
}
