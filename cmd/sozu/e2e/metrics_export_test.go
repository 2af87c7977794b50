package e2e

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// statsdSink collects the datagrams sent to a UDP socket.
type statsdSink struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	lines []string
}

func startStatsdSink(t *testing.T) *statsdSink {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &statsdSink{conn: c}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.lines = append(s.lines, strings.Split(string(buf[:n]), "\n")...)
			s.mu.Unlock()
		}
	}()
	return s
}

// sum adds up the values of the counter lines whose key matches re.
func (s *statsdSink) sum(re *regexp.Regexp) (n int64, seen bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		key, rest, ok := strings.Cut(l, ":")
		if !ok || !re.MatchString(key) || !strings.HasSuffix(rest, "|c") {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(rest, "|c"), 10, 64)
		if err == nil {
			n += v
			seen = true
		}
	}
	return n, seen
}

func (s *statsdSink) has(re *regexp.Regexp) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// Two workers; the supervisor sends upstream's statsd lines (each worker
// an origin WRK-<id>, counters as increments) and serves /metrics: N
// requests add up to N in both, and Prometheus' parser reads the scrape.
func TestMetricsStatsdAndPrometheus(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	sink := startStatsdSink(t)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := strings.Replace(simpleHTTPConfig(sock, front, origin.addr, 2), "backends = [ { address", `backends = [ { backend_id = "app-0", address`, 1) +
		fmt.Sprintf("\n[metrics]\naddress = %q\nprometheus_address = %q\ndetail = \"backend\"\n", sink.conn.LocalAddr().String(), prom)
	startProxy(t, dir, sock, cfg, front, prom)

	const n = 40
	for range n {
		getNew(t, "http://"+front+"/")
	}

	reqs := regexp.MustCompile(`^sozu\.WRK-0[01]\.http\.requests$`)
	clusterReqs := regexp.MustCompile(`^sozu\.WRK-0[01]\.cluster\.app\.requests$`)
	backendReqs := regexp.MustCompile(`^sozu\.WRK-0[01]\.cluster\.app\.backend\.app-0\.requests$`)
	sozutest.WaitFor(t, 20*time.Second, "statsd counters reach the requests made", func() bool {
		a, _ := sink.sum(reqs)
		b, _ := sink.sum(clusterReqs)
		c, _ := sink.sum(backendReqs)
		return a == n && b == n && c == n
	})
	for _, re := range []string{
		`^sozu\.WRK-0[01]\.client\.connections:\d+\|g$`,
		// The supervisor's own, under upstream's main origin.
		`^sozu\.MAIN\.configuration\.clusters:1\|g$`,
		`^sozu\.MAIN\.configuration\.backends:1\|g$`,
		`^sozu\.MAIN\.configuration\.frontends:1\|g$`,
		`^sozu\.WRK-0[01]\.cluster\.app\.backend_response_time:[0-9.]+\|ms(\|@[0-9.e-]+)?$`,
		`^sozu\.WRK-0[01]\.cluster\.app\.backend\.app-0\.backend\.available:1\|g$`,
	} {
		if !sink.has(regexp.MustCompile(re)) {
			t.Errorf("no statsd line matches %s", re)
		}
	}
	// The counters stay put: more flushes add nothing.
	for _, re := range []*regexp.Regexp{reqs, clusterReqs} {
		if v, _ := sink.sum(re); v != n {
			t.Errorf("%v adds up to %d, want %d", re, v, n)
		}
	}

	resp, err := http.Get("http://" + prom + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	if v := fams["sozu_http_requests_total"].GetMetric()[0].GetCounter().GetValue(); v != n {
		t.Errorf("sozu_http_requests_total = %v, want %d", v, n)
	}
	cl := fams["sozu_cluster_requests_total"]
	if cl == nil || cl.GetMetric()[0].GetLabel()[0].GetValue() != "app" || cl.GetMetric()[0].GetCounter().GetValue() != n {
		t.Errorf("sozu_cluster_requests_total: %v", cl)
	}
	s := fams["sozu_cluster_backend_response_time_seconds"]
	if s == nil || s.GetMetric()[0].GetSummary().GetSampleCount() != n {
		t.Fatalf("sozu_cluster_backend_response_time_seconds: %v", s)
	}
	for _, q := range s.GetMetric()[0].GetSummary().GetQuantile() {
		if v := q.GetValue(); v <= 0 || v > 5 {
			t.Errorf("quantile %v = %v s", q.GetQuantile(), v)
		}
	}
	if b := fams["sozu_backend_backend_available"]; b == nil || b.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("sozu_backend_backend_available: %v", b)
	}
}

// TestUpstreamDocumentedMetrics: the seven metrics upstream's
// doc/metrics.md lists (its "key metrics to monitor") reach statsd under
// upstream's names and types, tagged as upstream tags them
// (tagged_metrics = true), and `sozu metrics get --list` names them; the
// supervisor's configuration.* gauges go as upstream's main process's
// (origin=MAIN).
func TestUpstreamDocumentedMetrics(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	sink := startStatsdSink(t)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := simpleHTTPConfig(sock, front, origin.addr, 1) +
		fmt.Sprintf("\n[metrics]\naddress = %q\ntagged_metrics = true\nprefix = \"sozu\"\n", sink.conn.LocalAddr().String())
	p := startProxy(t, dir, sock, cfg, front)
	getNew(t, "http://"+front+"/")
	// A request the proxy answers 400 itself (two Host fields): http.errors.
	if _, err := rawExchange(t, front, []byte("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")); err != nil {
		t.Fatal(err)
	}

	tags := `,origin=WRK-00,version=[^,:]+`
	for _, c := range []struct{ name, typ string }{
		{"http.requests", "c"},
		{"http.errors", "c"},
		{"client.connections", "g"},
		{"backend.connections", "g"},
		{"buffer.number", "g"},
		{"slab.entries", "g"},
		{"zombies", "g"},
	} {
		re := regexp.MustCompile(`^sozu\.` + regexp.QuoteMeta(c.name) + tags + `:\d+\|` + c.typ + `$`)
		sozutest.WaitFor(t, 10*time.Second, "statsd line "+re.String(), func() bool { return sink.has(re) })
	}
	// The supervisor's gauges of the configuration, as upstream's main
	// process sends them (origin MAIN).
	for _, name := range []string{"configuration.clusters", "configuration.backends", "configuration.frontends"} {
		re := regexp.MustCompile(`^sozu\.` + regexp.QuoteMeta(name) + `,origin=MAIN,version=[^,:]+:1\|g$`)
		sozutest.WaitFor(t, 10*time.Second, "statsd line "+re.String(), func() bool { return sink.has(re) })
	}
	list := p.MustCLI("metrics", "get", "--list")
	for _, name := range []string{"buffer.number", "slab.entries", "zombies"} {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(name) + `$`).MatchString(list) {
			t.Errorf("metrics get --list does not name %s:\n%s", name, list)
		}
	}
}

// count returns how many lines match re.
func (s *statsdSink) count(re *regexp.Regexp) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if re.MatchString(l) {
			n++
		}
	}
	return n
}

// TestStatsdWorkerSilentForAFlush: a worker that misses statsd flushes
// (stopped past worker_timeout, not yet hung long enough to be replaced)
// and answers again must send only what is new: statsd adds the |c lines
// up, and a worker that sent its whole count since it started again after
// each silence made every counter of the dashboard jump by that count.
func TestStatsdWorkerSilentForAFlush(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	sink := startStatsdSink(t)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := strings.Replace(simpleHTTPConfig(sock, front, origin.addr, 1), "worker_timeout = 10", "worker_timeout = 3", 1) +
		fmt.Sprintf("\n[metrics]\naddress = %q\n", sink.conn.LocalAddr().String())
	startProxy(t, dir, sock, cfg, front)

	reqs := regexp.MustCompile(`^sozu\.WRK-00\.http\.requests$`)
	flushes := regexp.MustCompile(`^sozu\.MAIN\.workers:\d+\|g$`) // one per flush
	workerGauge := regexp.MustCompile(`^sozu\.WRK-00\.client\.connections:\d+\|g$`)
	const n, m = 10, 5
	for range n {
		getNew(t, "http://"+front+"/")
	}
	sozutest.WaitFor(t, 20*time.Second, "statsd counts the first requests", func() bool { v, _ := sink.sum(reqs); return v == n })

	pid := workerPIDs(t, sock)[0]
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	// The flush under way when the worker stopped, then one begun after
	// it: that one went without the worker's answer.
	f0 := sink.count(flushes)
	sozutest.WaitFor(t, 20*time.Second, "two statsd flushes while the worker is stopped", func() bool { return sink.count(flushes) >= f0+2 })
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	c := sozutest.Dial(t, sock)
	sozutest.WaitFor(t, 20*time.Second, "the worker answers again", func() bool {
		resp := c.MustOK(t, &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
		for _, w := range resp.GetContent().GetWorkers().GetVec() {
			if int(w.GetPid()) != pid {
				continue
			}
			if w.GetRunState() == command.RunState_STOPPED {
				t.Fatalf("worker %d was replaced: the test wanted it silent, not hung", pid)
			}
			return w.GetRunState() == command.RunState_RUNNING
		}
		t.Fatalf("worker %d was replaced: the test wanted it silent, not hung", pid)
		return false
	})
	for range m {
		getNew(t, "http://"+front+"/")
	}
	sozutest.WaitFor(t, 20*time.Second, "statsd counts the requests after the silence", func() bool { v, _ := sink.sum(reqs); return v >= n+m })
	g0 := sink.count(workerGauge)
	sozutest.WaitFor(t, 20*time.Second, "two more flushes with the worker", func() bool { return sink.count(workerGauge) >= g0+2 })
	if v, _ := sink.sum(reqs); v != n+m {
		t.Errorf("statsd adds up %d requests for worker 0, want %d", v, n+m)
	}
}

// TestStatsdAfterMetricsClear: `sozu metrics clear` restarts every
// counter; statsd sends increases, and the exporter took a counter that
// came back from the clear at or above its value before it for an
// increase from there: the requests made after a clear, up to the count
// before it, never reached statsd. Every request is counted once.
func TestStatsdAfterMetricsClear(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	sink := startStatsdSink(t)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := simpleHTTPConfig(sock, front, origin.addr, 1) + fmt.Sprintf("\n[metrics]\naddress = %q\n", sink.conn.LocalAddr().String())
	startProxy(t, dir, sock, cfg, front)

	reqs := regexp.MustCompile(`^sozu\.WRK-00\.http\.requests$`)
	flushes := regexp.MustCompile(`^sozu\.MAIN\.workers:\d+\|g$`) // one per flush
	getNew(t, "http://"+front+"/")
	sozutest.WaitFor(t, 20*time.Second, "statsd counts the request before the clear", func() bool { v, _ := sink.sum(reqs); return v == 1 })

	sozutest.Dial(t, sock).MustOK(t, &command.Request{RequestType: &command.Request_ConfigureMetrics{ConfigureMetrics: command.MetricsConfiguration_CLEAR}})
	const m = 20
	for range m {
		getNew(t, "http://"+front+"/")
	}
	f0 := sink.count(flushes)
	sozutest.WaitFor(t, 20*time.Second, "two statsd flushes after the requests", func() bool { return sink.count(flushes) >= f0+2 })
	if v, _ := sink.sum(reqs); v != 1+m {
		t.Errorf("statsd adds up %d requests, want %d", v, 1+m)
	}
}
