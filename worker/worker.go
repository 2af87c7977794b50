// Package worker is a Sōzu worker process: it receives its configuration,
// state and listening sockets from the supervisor, and carries the traffic.
package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/sandbox"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/connlimit"
	"github.com/sozu-go/sozu/worker/health"
	"github.com/sozu-go/sozu/worker/ipcap"
	"github.com/sozu-go/sozu/worker/logfilter"
	"github.com/sozu-go/sozu/worker/memtrim"
	"github.com/sozu-go/sozu/worker/metrics"
	"github.com/sozu-go/sozu/worker/proxy"
	"github.com/sozu-go/sozu/worker/splice"
	"github.com/sozu-go/sozu/worker/tcp"
	"github.com/sozu-go/sozu/worker/tlsconf"
	"github.com/sozu-go/sozu/worker/udp"
)

// Descriptors a worker inherits from the supervisor.
const (
	channelFD = 3 // framed WorkerRequest/WorkerResponse channel
	scmFD     = 4 // listener descriptors over SCM_RIGHTS
	stateFD   = 5 // InitialState, raw protobuf
	logFD     = 6 // log channel to the supervisor (logs.go)
	accessFD  = 7 // the access log file, with --access-log-file (logs.go)
)

// maxInitialState bounds the initial state a worker reads at start.
const maxInitialState = 256 << 20

// Worker is one worker's runtime. It is driven by a single goroutine (the
// command loop), which owns every field; the connection goroutines of the
// servers only read the snapshots it swaps in, and write events through
// out, which is safe for concurrent use.
type Worker struct {
	id    uint32
	cfg   *command.ServerConfig
	log   *logrus.Entry
	state *state.ConfigState
	lis   *listenerSet
	conn  net.Conn
	out   *frame.Writer
	max   int

	frames *frame.Reader

	reg     *backends.Registry
	health  *health.Checker    // active health checks; probes start with serve
	stopHC  context.CancelFunc // stops health's Run
	trim    memtrim.Trimmer    // gives a quiet worker's spare heap back (runs with serve)
	conns   *connlimit.Limit
	snap    *snapshot
	servers map[string]*proxy.Server // by listener key, for active HTTP listeners
	tcpSrv  map[string]*tcp.Server   // by listener key, for active TCP listeners
	udpSrv  map[string]*udp.Server   // by listener key, for active UDP listeners
	tcpConn *connlimit.Limit
	ipcaps  *ipcap.Limits     // max_connections_per_ip, shared by every server
	metrics *metrics.Registry // shared by every server (metrics.go)
	// clearedLive holds liveCounters at the last configure_metrics CLEAR
	// (command loop only).
	clearedLive map[string]int64
	certs       tlsconf.Store          // SNI indexes of the HTTPS listeners, read by handshakes
	tlsCfg      map[string]*tls.Config // by listener key: one per listener, so that session tickets survive rebuilds
	serving     bool                   // bootstrap is over: servers run
	tickets     bool                   // tls_session_tickets: listeners may issue session tickets
	access      *accesslog.Logger      // the access log (logs.go)
	logs        *workerLogs            // both logs' shippers, for their drops

	// The command loop rebuilds once for a burst of changes (see serve):
	// with deferRebuild, apply marks the state dirty instead of rebuilding.
	deferRebuild bool
	dirty        bool // the state changed since the last rebuild
}

// Main runs a worker process (`sozu worker --id N`, started by the
// supervisor only) and returns its exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	id := fs.Uint("id", 0, "worker id assigned by the supervisor")
	uid := fs.Int("uid", -1, "uid to drop to (resolved by the supervisor); -1: keep")
	gid := fs.Int("gid", -1, "gid to drop to; -1: keep")
	mode := fs.String("sandbox", "kill", "seccomp mode: kill, errno or off")
	allowRoot := fs.Bool("allow-root", false, "let the worker keep uid 0")
	tickets := fs.Bool("tls-session-tickets", false, "let HTTPS listeners with send_tls13_tickets > 0 issue session tickets")
	alFormat := fs.String("access-log-format", "ascii", "access log format: ascii, protobuf or json")
	alQuery := fs.String("access-log-query", "mask", "query values in access logs: mask, keep or drop")
	alColored := fs.Bool("access-log-colored", false, "colour the ascii access log")
	colored := fs.Bool("log-colored", false, "colour the main log lines (log_colored, log_target stdout)")
	alGated := fs.Bool("access-log-gated", false, "access records share the main target and follow log_level (successes at info, failures at error)")
	alFile := fs.Bool("access-log-file", false, "fd 7 is the access log file: write the access records to it, not to the supervisor")
	threads := fs.Int("threads", 0, "GOMAXPROCS of this worker (worker_threads); 0: Go's default, one per CPU")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *threads < 0 {
		fmt.Fprintf(os.Stderr, "worker %d: --threads: %d is negative\n", *id, *threads)
		return 2
	}
	if *threads > 0 {
		// Fewer Ps than CPUs: no spinning Ms hunting for work and fewer
		// futex wake-ups between threads per request. Threads blocked in
		// system calls are not counted (the runtime adds them as needed).
		runtime.GOMAXPROCS(*threads)
	}
	// Before anything else opens a descriptor: only the bootstrap ones and
	// the runtime's (close-on-exec) stay.
	keep := []int{channelFD, scmFD, stateFD, logFD}
	if *alFile {
		keep = append(keep, accessFD)
	}
	inherited, err := sandbox.CloseInherited(keep...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker %d: %v\n", *id, err)
		return 1
	}
	sbMode, err := sandbox.ParseMode(*mode)
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker %d: --sandbox: %v\n", *id, err)
		return 2
	}
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	if *colored {
		logger.SetFormatter(&logrus.TextFormatter{ForceColors: true, FullTimestamp: true})
	}
	log := logger.WithField("worker", *id)
	logs, err := openLogs(uint32(*id), *alFormat, *alQuery, *alColored, *alGated, *alFile)
	if err != nil {
		log.Errorf("log channel: %v", err)
		return 2
	}
	defer logs.close()
	logger.SetOutput(logs.ship.MainLog())
	logs.receiveAccessFiles(log)
	if len(inherited) > 0 {
		log.Warnf("closed descriptors %v inherited from the supervisor's parent", inherited)
	}

	w, err := bootstrap(uint32(*id), log)
	if err != nil {
		log.Errorf("bootstrap: %v", err)
		return 1
	}
	w.tickets = *tickets
	w.access, w.logs = logs.access, logs
	if lvl, err := logfilter.Parse(w.cfg.GetLogLevel()); err == nil {
		logger.SetLevel(lvl)
		w.access.SetLevel(lvl)
	}
	// Confinement comes last before serving (docs/architecture.md §1): everything the
	// worker needs is open, and no listener accepts yet.
	acct := sandbox.Account{UID: os.Getuid(), GID: os.Getgid()}
	if *uid >= 0 && *gid >= 0 {
		acct = sandbox.Account{User: strconv.Itoa(*uid), Group: strconv.Itoa(*gid), UID: *uid, GID: *gid}
	}
	ident, err := sandbox.Confine(sandbox.Options{Account: acct, AllowRoot: *allowRoot, Mode: sbMode})
	if err != nil {
		log.Errorf("sandbox: %v: refusing to serve", err)
		return 1
	}
	// The ids read after the drop: an unprivileged supervisor's workers
	// keep its uid, whatever worker_user says.
	log.WithFields(logrus.Fields{"uid": ident.UID, "gid": ident.GID, "sandbox": sbMode, "threads": runtime.GOMAXPROCS(0)}).Info("worker confined")
	if *uid >= 0 && *gid >= 0 && !ident.Matches(acct) {
		log.Warnf("worker runs as uid %d gid %d, not as the worker account %s: the supervisor is not root and cannot drop privileges", ident.UID, ident.GID, acct)
	}
	return w.serve()
}

// bootstrap reads what the supervisor hands a new worker: ServerConfig as
// the first frame on the channel, the listeners over SCM_RIGHTS, and the
// initial state from its own descriptor, which it then applies.
func bootstrap(id uint32, log *logrus.Entry) (*Worker, error) {
	ch := os.NewFile(channelFD, "channel")
	conn, err := net.FileConn(ch)
	ch.Close()
	if err != nil {
		return nil, fmt.Errorf("channel fd %d: %w", channelFD, err)
	}
	cfg := &command.ServerConfig{}
	r := frame.NewReader(conn, frame.DefaultMaxSize)
	if err := r.ReadMessage(cfg); err != nil {
		return nil, fmt.Errorf("reading ServerConfig: %w", err)
	}
	max := int(cfg.GetMaxCommandBufferSize())

	lis, err := newListenerSet(scmFD)
	if err != nil {
		return nil, err
	}
	if err := lis.receive(true); err != nil {
		return nil, fmt.Errorf("receiving listeners: %w", err)
	}

	sf := os.NewFile(stateFD, "initial-state")
	b, err := io.ReadAll(io.LimitReader(sf, maxInitialState+1))
	sf.Close()
	if err != nil {
		return nil, fmt.Errorf("reading initial state: %w", err)
	}
	if len(b) > maxInitialState {
		return nil, fmt.Errorf("initial state larger than %d bytes", maxInitialState)
	}
	init := &command.InitialState{}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, init); err != nil {
		return nil, fmt.Errorf("decoding initial state: %w", err)
	}

	w := newWorker(id, cfg, log, lis, conn, max)
	for _, wr := range init.GetRequests() {
		if resp := w.handle(wr); resp.GetStatus() == command.ResponseStatus_FAILURE {
			log.Warnf("initial state record %s (%s): %s", wr.GetId(), command.VerbName(wr.GetContent()), resp.GetMessage())
		}
	}
	w.frames = r
	return w, nil
}

func newWorker(id uint32, cfg *command.ServerConfig, log *logrus.Entry, lis *listenerSet, conn net.Conn, max int) *Worker {
	w := &Worker{id: id, cfg: cfg, log: log, state: state.New(), lis: lis, conn: conn, max: max,
		out: frame.NewWriter(conn, max), servers: map[string]*proxy.Server{}, tcpSrv: map[string]*tcp.Server{},
		udpSrv: map[string]*udp.Server{},
		tlsCfg: map[string]*tls.Config{},
		conns:  connlimit.New(int64(cfg.GetMaxConnections()), time.Duration(cfg.GetAcceptQueueTimeout())*time.Second)}
	w.tcpConn = w.conns // one max_connections for every protocol
	w.ipcaps = ipcap.New(cfg.GetMaxConnectionsPerIp(), cfg.GetRetryAfter())
	if err := splice.SetCapacity(cfg.GetSplicePipeCapacityBytes()); err != nil {
		log.Warnf("splice_pipe_capacity_bytes not applied, splice pipes keep the kernel's default: %v", err)
	}
	w.metrics = metrics.New()
	w.reg = backends.NewRegistry(backends.Options{OnEvent: w.emit})
	w.health = health.New(health.Options{Log: func(format string, args ...any) { log.Infof("health check: "+format, args...) }})
	return w
}

// emit sends a data-plane event (backend down or up, no backend left) to
// the supervisor. Called from connection goroutines.
func (w *Worker) emit(ev *command.Event) {
	switch ev.GetKind() {
	case command.EventKind_BACKEND_UP:
		w.metrics.BackendMoved(ev.GetClusterId(), ev.GetBackendId(), true)
	case command.EventKind_BACKEND_DOWN:
		w.metrics.BackendMoved(ev.GetClusterId(), ev.GetBackendId(), false)
	}
	resp := &command.WorkerResponse{Id: proto.String("EVENT"), Status: command.ResponseStatus_PROCESSING.Enum(),
		Message: proto.String(""), Content: &command.ResponseContent{ContentType: &command.ResponseContent_Event{Event: ev}}}
	if err := w.out.WriteMessage(resp); err != nil {
		w.log.Warnf("sending event %v: %v", ev.GetKind(), err)
	}
}

// answer sends resp to the supervisor. An answer longer than the channel's
// maximum (max_command_buffer_size: the metrics of a worker with many
// clusters and backends, which a stop's answer carries too) is replaced
// by a FAILURE that says so: the supervisor gets an answer and the
// worker goes on (or stops cleanly), instead of exiting for a frame it
// never sent. Other write errors are the channel's: returned.
func (w *Worker) answer(resp *command.WorkerResponse) error {
	err := w.out.WriteMessage(resp)
	var tl *frame.TooLargeError
	if !errors.As(err, &tl) {
		return err
	}
	w.log.Errorf("answering %s: %v; answered FAILURE instead", resp.GetId(), err)
	return w.out.WriteMessage(&command.WorkerResponse{Id: resp.Id, Status: command.ResponseStatus_FAILURE.Enum(),
		Message: proto.String(fmt.Sprintf("answer too large for the worker channel: %v", err))})
}

// maxCoalesced bounds how many state changes the command loop applies
// before it rebuilds the snapshot once and answers them (see serve).
const maxCoalesced = 1024

// incoming is one request read from the channel, or the error that ended
// the reading.
type incoming struct {
	wr  *command.WorkerRequest
	err error
}

// readRequests reads the channel until an error, which it passes on last.
func (w *Worker) readRequests(out chan<- incoming) {
	for {
		wr := &command.WorkerRequest{}
		if err := w.frames.ReadMessage(wr); err != nil {
			out <- incoming{err: err}
			return
		}
		out <- incoming{wr: wr}
	}
}

// serve starts the servers of the active listeners, then answers the
// supervisor's requests until the channel closes or a stop verb arrives.
//
// State changes that arrived together (up to maxCoalesced, already read
// when the first is handled) are applied one by one, then the snapshot is
// rebuilt once and their answers are sent, in order: an answer still means
// the change is live, and a burst of N changes (load_state) costs one
// rebuild instead of N, each as large as the state. Status is answered
// as soon as it is read; any other request (queries, stop, logging) after
// the changes before it are live.
func (w *Worker) serve() int {
	w.serving = true
	ctx, cancel := context.WithCancel(context.Background())
	w.stopHC = cancel
	defer cancel()
	go w.health.Run(ctx) // after confinement: probes dial from inside the sandbox
	go w.trim.Run(ctx)   // quiet after a burst: the heap's spare memory back to the system
	w.rebuild()
	reqs := make(chan incoming, maxCoalesced)
	go w.readRequests(reqs)
	var answers []*command.WorkerResponse
	// flush makes the pending changes live and sends their answers.
	flush := func() bool {
		if w.dirty {
			w.rebuild()
		}
		for _, resp := range answers {
			if err := w.answer(resp); err != nil {
				w.log.Errorf("answering %s: %v", resp.GetId(), err)
				return false
			}
		}
		answers = answers[:0]
		return true
	}
	for {
		batch := []incoming{<-reqs}
	more:
		for len(batch) < maxCoalesced && batch[len(batch)-1].err == nil {
			select {
			case in := <-reqs:
				batch = append(batch, in)
			default:
				break more
			}
		}
		for _, in := range batch {
			if in.err != nil {
				flush()
				w.stopServers(false)
				if errors.Is(in.err, io.EOF) {
					w.log.Info("supervisor closed the channel: exiting")
					return 0
				}
				w.log.Errorf("reading the channel: %v", in.err)
				return 1
			}
			if in.wr.GetContent().GetStatus() != nil {
				// A liveness probe: answered at once, before the
				// changes read with it are live (answers are matched
				// by id, not by order).
				if err := w.answer(w.handle(in.wr)); err != nil {
					w.log.Errorf("answering %s: %v", in.wr.GetId(), err)
					return 1
				}
				continue
			}
			if stateChange(in.wr.GetContent()) {
				w.deferRebuild = true
				answers = append(answers, w.handle(in.wr))
				w.deferRebuild = false
				continue
			}
			if !flush() {
				return 1
			}
			stop := false
			switch in.wr.GetContent().GetRequestType().(type) {
			case *command.Request_SoftStop:
				done := w.reportDrain(in.wr.GetId())
				w.stopServers(true)
				done()
				stop = true
			case *command.Request_HardStop:
				w.stopServers(false)
				stop = true
			}
			answers = append(answers, w.handle(in.wr))
			if !flush() {
				return 1
			}
			if stop {
				w.lis.closeAll()
				w.log.Info("stopped")
				return 0
			}
		}
		if !flush() {
			return 1
		}
	}
}

// stateChange reports whether req changes the state, and so the snapshot
// (see apply), as opposed to status, stop, logging and queries.
func stateChange(req *command.Request) bool {
	switch req.GetRequestType().(type) {
	case *command.Request_Status, *command.Request_SoftStop, *command.Request_HardStop, *command.Request_Logging,
		*command.Request_QueryClusterById, *command.Request_QueryClustersByDomain,
		*command.Request_QueryClustersHashes, *command.Request_QueryCertificatesFromWorkers,
		*command.Request_QueryMetrics, *command.Request_ConfigureMetrics:
		return false
	}
	return true
}

// stopServers stops every server: soft waits for in-flight requests to
// finish (idle connections close at once), hard closes every connection.
// Every listener copy of this worker is closed first, at once, before any
// connection drains (the supervisor shuts the sockets themselves). The
// stopped servers stay in w.servers, w.tcpSrv and w.udpSrv: the counters
// they keep themselves (liveCounters) are part of the final metrics the
// stop's answer carries.
func (w *Worker) stopServers(soft bool) {
	for _, srv := range w.servers {
		srv.StopAccepting()
	}
	for _, srv := range w.tcpSrv {
		srv.StopAccepting()
	}
	for _, srv := range w.udpSrv {
		srv.StopAccepting()
	}
	w.lis.closeAll()
	var wg sync.WaitGroup
	for _, srv := range w.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if soft {
				srv.Shutdown(context.Background())
			} else {
				srv.Close()
			}
		}()
	}
	for _, srv := range w.tcpSrv {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if soft {
				srv.Shutdown(context.Background())
			} else {
				srv.Close()
			}
		}()
	}
	for _, srv := range w.udpSrv {
		// A datagram protocol has no request in flight to wait for: soft
		// and hard stops both end the flows.
		wg.Add(1)
		go func() { defer wg.Done(); srv.Close() }()
	}
	wg.Wait()
	if w.stopHC != nil {
		w.stopHC()
	}
	w.reg.Close()
}

// rebuild derives a new data-plane snapshot from the state and swaps it
// into the running servers, then starts a server for each active HTTP
// listener that has none. Nothing runs before bootstrap is over.
func (w *Worker) rebuild() {
	if !w.serving {
		return
	}
	w.dirty = false
	w.snap = buildSnapshot(w.state, w.reg, w.tickets)
	for _, msg := range w.snap.warnings {
		w.log.Warn(msg)
	}
	w.health.Update(w.snap.health, w.snap.sets)
	w.retainMetrics()
	// The certificates change for every handshake at once; the listeners'
	// tls.Config values stay.
	w.certs.Swap(w.snap.https)
	for k := range w.snap.https {
		if w.tlsCfg[k] == nil {
			w.tlsCfg[k] = w.certs.Config(k)
		}
		if pl := w.snap.http[k]; pl != nil {
			pl.TLS = w.tlsCfg[k]
		}
	}
	for k := range w.tlsCfg {
		if w.snap.https[k] == nil {
			delete(w.tlsCfg, k)
		}
	}
	for k, srv := range w.servers {
		if cfg := w.snap.http[k]; cfg != nil {
			srv.Swap(cfg)
		}
	}
	for k, srv := range w.tcpSrv {
		if cfg := w.snap.tcp[k]; cfg != nil {
			srv.Swap(cfg)
		}
	}
	for _, cfg := range w.snap.udp {
		if cfg.MaxFlows == 0 { // max_flows 0: the worker's max_connections
			cfg.MaxFlows = int(min(w.cfg.GetMaxConnections(), math.MaxInt32))
		}
	}
	for k, srv := range w.udpSrv {
		if cfg := w.snap.udp[k]; cfg != nil {
			srv.Swap(cfg)
		}
	}
	for k, pc := range w.lis.packets {
		if cfg := w.snap.udp[k]; cfg != nil && w.udpSrv[k] == nil {
			srv := udp.NewServer(pc, cfg, udp.Options{Log: w.log.WithField("listener", k), Access: w.access, Metrics: w.metrics})
			w.udpSrv[k] = srv
			go w.serveListener(k, srv.Serve)
		}
	}
	for k, ln := range w.lis.active {
		if cfg := w.snap.tcp[k]; cfg != nil && w.tcpSrv[k] == nil {
			srv := tcp.NewServer(ln, cfg, tcp.Options{Log: w.log.WithField("listener", k), Conns: w.tcpConn, IPCaps: w.ipcaps, Access: w.access, Metrics: w.metrics})
			w.tcpSrv[k] = srv
			go w.serveListener(k, srv.Serve)
		}
		if w.servers[k] != nil || w.snap.http[k] == nil {
			continue
		}
		srv := proxy.NewServer(ln, w.snap.http[k], proxy.Options{Log: w.log.WithField("listener", k), Conns: w.conns, IPCaps: w.ipcaps, Access: w.access, Metrics: w.metrics})
		w.servers[k] = srv
		go w.serveListener(k, srv.Serve)
	}
}

// serveListener runs a server's accept loop. The supervisor shuts a
// listening socket when a stop begins or the listener is deactivated or
// removed: accept then fails with EINVAL, which is that, not an error.
func (w *Worker) serveListener(k string, serve func() error) {
	err := serve()
	switch {
	case err == nil:
	case errors.Is(err, syscall.EINVAL):
		w.log.Infof("listener %s shut by the supervisor: no longer accepting", k)
	default:
		w.log.Errorf("listener %s stopped accepting: %v", k, err)
	}
}

// drainReport is how often a soft-stopping worker reports its open
// connections to the supervisor.
const drainReport = 250 * time.Millisecond

// reportDrain sends PROCESSING answers to the soft stop id, at once and
// every drainReport, carrying the connections still open, until the
// returned function is called; the supervisor names them if its
// soft_stop_deadline cuts them (the format is the supervisor's
// drainFormat).
func (w *Worker) reportDrain(id string) (done func()) {
	var counters []func() int
	for _, srv := range w.servers {
		counters = append(counters, srv.Sessions)
	}
	for _, srv := range w.tcpSrv {
		counters = append(counters, srv.Sessions)
	}
	for _, srv := range w.udpSrv {
		counters = append(counters, srv.Sessions)
	}
	send := func() {
		n := 0
		for _, c := range counters {
			n += c()
		}
		resp := &command.WorkerResponse{Id: proto.String(id), Status: command.ResponseStatus_PROCESSING.Enum(),
			Message: proto.String(fmt.Sprintf("draining: %d connections open", n))}
		if err := w.out.WriteMessage(resp); err != nil {
			w.log.Warnf("reporting the drain: %v", err)
		}
	}
	stop, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(drainReport)
		defer t.Stop()
		for {
			send()
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// stopServer stops accepting on a listener being deactivated or removed;
// its connections finish their requests.
func (w *Worker) stopServer(kind command.ListenerType, addr string) {
	k := key(kind, addr)
	if srv := w.servers[k]; srv != nil {
		delete(w.servers, k)
		go srv.Shutdown(context.Background())
	}
	if srv := w.tcpSrv[k]; srv != nil {
		delete(w.tcpSrv, k)
		go srv.Shutdown(context.Background())
	}
	if srv := w.udpSrv[k]; srv != nil {
		delete(w.udpSrv, k)
		go srv.Close()
	}
}

// handle applies one request and builds its answer.
func (w *Worker) handle(wr *command.WorkerRequest) *command.WorkerResponse {
	content, err := w.apply(wr.GetContent())
	resp := &command.WorkerResponse{Id: proto.String(wr.GetId()), Content: content}
	if err != nil {
		resp.Status = command.ResponseStatus_FAILURE.Enum()
		resp.Message = proto.String(err.Error())
	} else {
		resp.Status = command.ResponseStatus_OK.Enum()
		resp.Message = proto.String("")
	}
	return resp
}

func (w *Worker) apply(req *command.Request) (*command.ResponseContent, error) {
	switch r := req.GetRequestType().(type) {
	case *command.Request_Status:
		return nil, nil
	case *command.Request_SoftStop, *command.Request_HardStop:
		// Answered once stopServers returned, just before the worker
		// exits: its final metrics, what it counted since the
		// supervisor last asked (the requests served while draining
		// too) included, which the supervisor passes on to statsd and
		// /metrics once (supervisor/departures.go).
		return &command.ResponseContent{ContentType: &command.ResponseContent_WorkerMetrics{WorkerMetrics: w.metricsSnapshot()}}, nil
	case *command.Request_Logging:
		// The supervisor's parser, so that a filter it accepted is applied
		// here too (and its errors read the same).
		lvl, err := logfilter.Parse(r.Logging)
		if err != nil {
			return nil, fmt.Errorf("Error parsing logging filter:\n%v", err)
		}
		w.log.Logger.SetLevel(lvl)
		w.access.SetLevel(lvl)
		return nil, nil
	case *command.Request_SetMaxConnectionsPerIp:
		// Runtime only (never saved), as upstream: the next connections
		// get the new global cap.
		w.ipcaps.SetGlobal(r.SetMaxConnectionsPerIp)
		return nil, nil
	case *command.Request_QueryMaxConnectionsPerIp:
		return &command.ResponseContent{ContentType: &command.ResponseContent_MaxConnectionsPerIpLimit{
			MaxConnectionsPerIpLimit: &command.MaxConnectionsPerIpLimit{Limit: proto.Uint64(w.ipcaps.Global())}}}, nil
	case *command.Request_QueryClusterById, *command.Request_QueryClustersByDomain, *command.Request_QueryClustersHashes:
		rc, _ := w.state.Query(req)
		return rc, nil
	case *command.Request_QueryCertificatesFromWorkers:
		return queryCertificates(w.state, &w.certs, r.QueryCertificatesFromWorkers), nil
	case *command.Request_QueryMetrics:
		return &command.ResponseContent{ContentType: &command.ResponseContent_WorkerMetrics{WorkerMetrics: w.metricsSnapshot()}}, nil
	case *command.Request_ConfigureMetrics:
		return nil, w.configureMetrics(r.ConfigureMetrics)
	}

	// Refuse a certificate this worker would not serve, naming the problem
	// (the state only checks that the leaf parses).
	var ck *command.CertificateAndKey
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddCertificate:
		ck = r.AddCertificate.GetCertificate()
	case *command.Request_ReplaceCertificate:
		ck = r.ReplaceCertificate.GetNewCertificate()
	}
	if ck != nil {
		if _, err := tlsconf.Load(ck.GetCertificate(), ck.GetCertificateChain(), ck.GetKey(), ck.GetNames(), time.Now()); err != nil {
			return nil, err
		}
	}
	if err := w.state.Dispatch(req); err != nil {
		var se *state.Error
		if errors.As(err, &se) && se.Kind == state.NotStateVerb {
			return nil, fmt.Errorf("not implemented: %s", command.VerbKey(req))
		}
		return nil, err
	}
	if err := certificateListener(w.state, req); err != nil {
		return nil, err // the state keeps the certificate, as upstream's does; nothing served changes
	}
	switch r := req.GetRequestType().(type) {
	case *command.Request_ActivateListener:
		if err := w.lis.activate(r.ActivateListener.GetProxy(), r.ActivateListener.GetAddress().Display()); err != nil {
			return nil, err
		}
	case *command.Request_DeactivateListener:
		w.stopServer(r.DeactivateListener.GetProxy(), r.DeactivateListener.GetAddress().Display())
		w.lis.deactivate(r.DeactivateListener.GetProxy(), r.DeactivateListener.GetAddress().Display())
	case *command.Request_RemoveListener:
		w.stopServer(r.RemoveListener.GetProxy(), r.RemoveListener.GetAddress().Display())
		w.lis.deactivate(r.RemoveListener.GetProxy(), r.RemoveListener.GetAddress().Display())
	}
	if w.deferRebuild {
		w.dirty = true
	} else {
		w.rebuild()
	}
	return nil, nil
}

func (w *Worker) String() string { return "worker " + strconv.FormatUint(uint64(w.id), 10) }
