package supervisor

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/supervisor/export"
)

// The supervisor exports the metrics: statsd datagrams every
// statsdInterval, and Prometheus' /metrics on demand. Workers send
// nothing themselves: they are confined (docs/sandbox.md), the
// supervisor already merges their answers for query_metrics, and one
// sender keeps one socket and one place where send errors are counted.

// statsdInterval is upstream's flush cadence.
const statsdInterval = time.Second

// maxScrapes bounds the Prometheus scrapes gathered at once; more are
// answered 503 at once.
const maxScrapes = 4

// maxPrometheusConns bounds the connections the Prometheus server holds
// at once; one past it is closed as soon as accepted, so that local users
// opening idle connections cannot use up the supervisor's descriptors.
const maxPrometheusConns = 32

// exportStats counts the exporters' own events (reported as main metrics).
type exportStats struct {
	statsdSent   atomic.Int64 // datagrams sent
	statsdErrors atomic.Int64 // datagrams not sent (socket full, peer unreachable)
	scrapes      atomic.Int64 // /metrics answered
}

var allMetrics = &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: &command.QueryMetricsOptions{
	List: proto.Bool(false), NoClusters: proto.Bool(false), Workers: proto.Bool(false)}}}

// startExporters starts the statsd sender and the Prometheus server the
// [metrics] table asks for; both stop when Run returns. A Prometheus
// address that cannot be bound fails the start.
func (s *Supervisor) startExporters() error {
	m := s.cfg.Metrics
	if m == nil {
		return nil
	}
	level := export.LevelOf(m.Detail, s.cfg.DisableClusterMetrics)
	if m.Prometheus != "" {
		ln, err := listenPrometheus(m.Prometheus)
		if err != nil {
			return fmt.Errorf("configuration %s: [metrics] prometheus_address %s: %w", s.cfg.Path, m.Prometheus, err)
		}
		if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.AddrPort().Addr().Unmap().IsLoopback() {
			{
				s.log.Warnf("Prometheus /metrics served on %s, not a loopback address: anyone who can reach it reads the cluster ids and traffic figures", m.Prometheus)
			}
		}
		sem := make(chan struct{}, maxScrapes)
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) { s.scrape(w, r, sem, level) })
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: s.cfg.WorkerTimeout + 10*time.Second, MaxHeaderBytes: 16 << 10}
		s.retired.on.Store(true)
		go srv.Serve(&boundedListener{Listener: ln, slots: make(chan struct{}, maxPrometheusConns)})
		go func() {
			<-s.stopped
			srv.Close()
			// After a hand-over the path is the successor's socket.
			if path, ok := strings.CutPrefix(m.Prometheus, "unix:"); ok && !s.handedOver.Load() {
				os.Remove(path)
			}
		}()
		s.log.WithField("address", m.Prometheus).Info("Prometheus /metrics ready")
	}
	// statsd after Prometheus: a failed bind starts nothing, so the start
	// can be retried (startExportersAfterHandOver).
	if m.Address.IsValid() {
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(m.Address))
		if err != nil {
			return fmt.Errorf("configuration %s: [metrics] address %s: %w", s.cfg.Path, m.Address, err)
		}
		st := export.NewStatsd(export.StatsdOptions{Prefix: m.Prefix, Tagged: m.TaggedMetrics, Version: Version, Level: level})
		s.finals.on.Store(true)
		go s.runStatsd(conn, st)
	}
	return nil
}

// exportersHandOverWait bounds how long a supervisor that took over in a
// hot upgrade waits for its predecessor to release the Prometheus address.
const exportersHandOverWait = 15 * time.Second

// startExportersAfterHandOver starts the exporters of a supervisor that
// took over in a hot upgrade. Its predecessor serves /metrics until it
// exits, so the bind is retried while the address is in use; any other
// error, or the address still taken after exportersHandOverWait, is
// logged: traffic and the command socket are not stopped for metrics.
func (s *Supervisor) startExportersAfterHandOver() {
	deadline := time.Now().Add(exportersHandOverWait)
	for {
		err := s.startExporters()
		if err == nil {
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			s.log.Errorf("after the upgrade: %v", err)
			return
		}
		select {
		case <-s.stopped:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// listenPrometheus binds "ip:port" or "unix:/path" (mode 0660: the
// group of the supervisor may scrape; a stale socket file is replaced).
func listenPrometheus(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// scrape answers GET /metrics: the workers' metrics merged, in the text
// exposition format; 503 when a worker does not answer in time or too
// many scrapes run.
func (s *Supervisor) scrape(w http.ResponseWriter, r *http.Request, sem chan struct{}, level export.Level) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
		return
	}
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
	default:
		http.Error(w, "too many scrapes at once", http.StatusServiceUnavailable)
		return
	}
	am, err := s.gatherPrometheus()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	s.exports.scrapes.Add(1)
	w.Header().Set("Content-Type", export.ContentType)
	export.WritePrometheus(w, am, level)
}

// gatherPrometheus gathers the workers' metrics for a scrape, as
// query_metrics does, and adds the counts of the workers gone
// (retiredMetrics) to the sums. A worker of the table that does not
// answer fails the scrape: a sum without its counts would go down.
func (s *Supervisor) gatherPrometheus() (*command.AggregatedMetrics, error) {
	var calls []*call
	var live []uint32
	var seq, clears uint64
	var main map[string]*command.FilteredMetrics
	var known map[string]map[string]bool
	s.do(func(a *actor) {
		calls = a.fanout(allMetrics)
		seq, clears, main, known = a.nextTask, a.metricsClears, a.mainMetrics(), a.state.BackendIDs()
		live = a.liveWorkers()
	})
	outs := s.gather(nil, calls, s.cfg.WorkerTimeout)
	answers, failed := metricsAnswers(outs)
	asked := map[uint32]bool{}
	for _, o := range outs {
		asked[o.worker] = true
	}
	for _, id := range live {
		if !asked[id] {
			failed = append(failed, fmt.Sprintf("%d: worker %d could not be asked", id, id))
		}
	}
	agg := pm.NewAggregator(allMetrics.GetQueryMetrics())
	if err := metricsFailed(addAnswers(agg, answers, failed)); err != nil {
		return nil, err
	}
	gone, held := s.retired.note(answers, seq, live, clears, known)
	if len(held) > 0 {
		// Workers whose counts gone holds already: told to stop, or,
		// for a scrape older than one noted, gone since.
		for _, id := range held {
			delete(answers, id)
		}
		agg = pm.NewAggregator(allMetrics.GetQueryMetrics())
		addAnswers(agg, answers, nil) // each was taken once already
	}
	if gone != nil {
		if err := agg.Add("gone", gone); err != nil {
			return nil, fmt.Errorf("the counts of the workers gone: %w", err)
		}
	}
	return agg.Result(main), nil
}

// liveWorkers returns the ids of the workers of the table that fan-outs
// ask (not stopped). Actor only.
func (a *actor) liveWorkers() []uint32 {
	var ids []uint32
	for _, w := range a.sortedWorkers() {
		if w.runState != command.RunState_STOPPED {
			ids = append(ids, w.id)
		}
	}
	return ids
}

// runStatsd gathers the workers' metrics and its own every
// statsdInterval and sends them, until the supervisor stops. A send never waits: a datagram the
// socket cannot take at once is dropped and counted.
func (s *Supervisor) runStatsd(conn *net.UDPConn, st *export.Statsd) {
	defer conn.Close()
	var lastClears uint64
	// The workers inherited in a hot upgrade: the previous supervisor
	// sent their counts so far, so their first answer here is a
	// baseline, not news.
	inherited := map[string]bool{}
	s.do(func(a *actor) {
		lastClears = a.metricsClears
		for _, w := range a.workers {
			if w.pidfd != nil {
				inherited[workerKey(w.id)] = true
			}
		}
	})
	t := time.NewTicker(statsdInterval)
	defer t.Stop()
	for {
		var last chan struct{}
		select {
		case <-s.stopped:
			return
		case <-t.C:
		case last = <-s.statsdLast:
		}
		var main map[string]*command.FilteredMetrics
		var answers map[string]*command.WorkerMetrics
		var silent []string
		var clears uint64
		if last == nil {
			main, answers, silent, clears = s.statsdRound()
		} else {
			// The workers have exited: only their final metrics.
			s.do(func(a *actor) { main, clears = a.mainMetrics(), a.metricsClears })
			answers = map[string]*command.WorkerMetrics{}
		}
		// The final metrics of the workers that left since the last
		// flush: counted from their last values, once. Those still
		// awaited keep their last values (silent).
		finals, waiting := s.finals.take(clears)
		for id, wm := range finals {
			answers[id] = wm // newer than an answer of the same round
		}
		silent = append(silent, waiting...)
		if clears != lastClears {
			// Every counter and sketch answered restarted since the
			// last flush: all they hold is new.
			st.Reset()
			lastClears = clears
			clear(inherited)
		}
		for id := range inherited {
			if wm := answers[id]; wm != nil {
				st.Baseline(id, wm)
				delete(inherited, id)
			}
		}
		for _, d := range st.Flush(main, answers, silent...) {
			if err := sendNow(conn, d); err != nil {
				if s.exports.statsdErrors.Add(1) == 1 {
					s.log.Warnf("statsd: sending to %s: %v (further errors are only counted, in statsd.send_errors)", conn.RemoteAddr(), err)
				}
				continue
			}
			s.exports.statsdSent.Add(1)
		}
		if last != nil {
			close(last)
		}
	}
}

// sendNow writes one datagram without ever waiting: when the socket
// buffer is full (EAGAIN) the datagram is dropped and the error returned.
func sendNow(conn *net.UDPConn, d []byte) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), d)
		return true // done, whatever the result: no wait for writability
	}); err != nil {
		return err
	}
	return werr
}

// statsdRound asks every worker for its metrics, unmerged, by worker id
// (answers); a worker of the table that does not answer (or could not be
// asked) is left out of them and named in silent. main is the
// supervisor's own metrics and clears the configure_metrics CLEAR fanned
// out so far, both read in the actor step that sends the query: a worker
// reads its channel in order, so its answer counts from the last of those
// clears.
func (s *Supervisor) statsdRound() (main map[string]*command.FilteredMetrics, answers map[string]*command.WorkerMetrics, silent []string, clears uint64) {
	var calls []*call
	var live []uint32
	s.do(func(a *actor) {
		calls = a.fanout(allMetrics)
		main, clears, live = a.mainMetrics(), a.metricsClears, a.liveWorkers()
	})
	answers = map[string]*command.WorkerMetrics{}
	for _, o := range s.gather(nil, calls, s.cfg.WorkerTimeout) {
		if o.ok() && o.resp.GetContent().GetWorkerMetrics() != nil {
			answers[workerKey(o.worker)] = o.resp.GetContent().GetWorkerMetrics()
		}
	}
	for _, id := range live {
		if answers[workerKey(id)] == nil {
			silent = append(silent, workerKey(id))
		}
	}
	return main, answers, silent, clears
}

// boundedListener holds at most cap(slots) accepted connections: a
// connection accepted past it is closed at once, and accepting goes on.
type boundedListener struct {
	net.Listener
	slots chan struct{}
}

func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, slots: l.slots}, nil
		default:
			c.Close()
		}
	}
}

// slotConn gives its slot back when first closed.
type slotConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}
