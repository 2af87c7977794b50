package e2e

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal([]byte(got), want) {
		t.Errorf("%s differs from the golden file:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func queryMetrics(t *testing.T, sock string, opt *command.QueryMetricsOptions) *command.AggregatedMetrics {
	t.Helper()
	if opt == nil {
		opt = &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(false), Workers: proto.Bool(false)}
	}
	c := sozutest.Dial(t, sock)
	// Closed once answered, not with the test: polled (WaitFor), one
	// command session per poll would reach command_max_sessions_per_uid.
	defer c.Conn.Close()
	resp := c.MustOK(t, &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: opt}})
	am := resp.GetContent().GetMetrics()
	if am == nil {
		t.Fatalf("query_metrics answered no AggregatedMetrics: %v", resp)
	}
	return am
}

// getNew makes one request on a new connection (the kernel spreads new
// connections over the workers).
func getNew(t *testing.T, url string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func countOf(m map[string]*command.FilteredMetrics, name string) int64 { return m[name].GetCount() }

// N requests through 2 workers add up to N in the aggregate, per status
// class, per cluster and per backend; each worker's own counts add up to
// the same; percentiles are ordered and within the delay the origin adds.
func TestMetricsAddUpAcrossWorkers(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			w.WriteHeader(404)
			return
		}
		time.Sleep(2 * time.Millisecond) // the backend's own time: response times must reach it
		io.WriteString(w, "hello")
	}))
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	// The backend's id is set: the goldens must not carry the origin's port.
	cfg := strings.Replace(simpleHTTPConfig(sock, front, origin.addr, 2), "backends = [ { address", `backends = [ { backend_id = "app-0", address`, 1)
	p := startProxy(t, dir, sock, cfg, front)

	const ok, missing = 60, 7
	// New connections each time: the kernel spreads them over both workers.
	for i := 0; i < ok+missing; i++ {
		path := "/"
		if i < missing {
			path = "/missing"
		}
		getNew(t, "http://"+front+path)
	}

	// A worker records a request just after its answer went out, and
	// gives its backend connection back then: wait for the last one.
	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the last request is recorded", func() bool {
		am = queryMetrics(t, sock, &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(false), Workers: proto.Bool(true)})
		b := am.GetClusters()["app"].GetBackends()
		return countOf(am.GetProxying(), pm.HTTPRequests) >= ok+missing && len(b) == 1 && b[0].GetMetrics()[pm.ConnectionsPerBackend].GetGauge() == 0
	})
	if got := countOf(am.GetProxying(), pm.HTTPRequests); got != ok+missing {
		t.Errorf("%s = %d, want %d", pm.HTTPRequests, got, ok+missing)
	}
	if got := countOf(am.GetProxying(), pm.Status2xx); got != ok {
		t.Errorf("%s = %d, want %d", pm.Status2xx, got, ok)
	}
	if got := countOf(am.GetProxying(), pm.Status4xx); got != missing {
		t.Errorf("%s = %d, want %d", pm.Status4xx, got, missing)
	}
	// startProxy's readiness probe is one more connection.
	if got := countOf(am.GetProxying(), pm.AcceptedConnections); got != ok+missing+1 {
		t.Errorf("%s = %d, want %d", pm.AcceptedConnections, got, ok+missing+1)
	}
	if got := countOf(am.GetProxying(), pm.AcceptedHTTP); got != ok+missing+1 {
		t.Errorf("%s = %d, want %d (an HTTP listener's)", pm.AcceptedHTTP, got, ok+missing+1)
	}
	if got := am.GetProxying()[pm.ClientConnectionsMax].GetGauge(); got == 0 {
		t.Errorf("%s = 0, want max_connections (per worker, summed)", pm.ClientConnectionsMax)
	}
	// The backend connections the workers pooled after their requests
	// (at least one; at most one per request).
	if got := am.GetProxying()[pm.BackendConnections].GetGauge(); got < 1 || got > ok+missing {
		t.Errorf("%s = %d, want between 1 and %d", pm.BackendConnections, got, ok+missing)
	}
	if len(am.GetWorkers()) != 2 {
		t.Fatalf("workers: %d, want 2", len(am.GetWorkers()))
	}
	var sum int64
	for id, w := range am.GetWorkers() {
		n := countOf(w.GetProxy(), pm.HTTPRequests)
		t.Logf("worker %s: %d requests", id, n)
		sum += n
	}
	if sum != ok+missing {
		t.Errorf("the workers' own counts add up to %d, want %d", sum, ok+missing)
	}
	cl := am.GetClusters()["app"]
	if cl == nil {
		t.Fatalf("no cluster app in %v", am.GetClusters())
	}
	if got := countOf(cl.GetCluster(), pm.Requests); got != ok+missing {
		t.Errorf("cluster %s = %d, want %d", pm.Requests, got, ok+missing)
	}
	if len(cl.GetBackends()) != 1 {
		t.Fatalf("backends: %v", cl.GetBackends())
	}
	b := cl.GetBackends()[0].GetMetrics()
	if got := countOf(b, pm.Status2xx); got != ok {
		t.Errorf("backend %s = %d, want %d", pm.Status2xx, got, ok)
	}
	if b[pm.BackendAvailable].GetGauge() != 1 || b[pm.BackendDown].GetCount() != 0 {
		t.Errorf("backend available %d, went down %d times, want 1 and 0", b[pm.BackendAvailable].GetGauge(), b[pm.BackendDown].GetCount())
	}
	pr := cl.GetCluster()[pm.BackendResponseTime].GetPercentiles()
	if pr.GetSamples() != ok+missing {
		t.Errorf("response time samples = %d, want %d", pr.GetSamples(), ok+missing)
	}
	// 2 ms of sleep in the origin: the median of all (the 404s are fast)
	// is above it, give or take the sketch's 1 %; the percentiles are
	// ordered.
	if pr.GetP_50() < 1900 || pr.GetP_50() > pr.GetP_90() || pr.GetP_90() > pr.GetP_99() || pr.GetP_99() > pr.GetP_100() {
		t.Errorf("response time percentiles (µs) not sane: %v", pr)
	}
	if c := cl.GetCluster()[pm.BackendConnectionTime].GetPercentiles(); c.GetSamples() == 0 || c.GetP_50() > 100_000 {
		t.Errorf("connect time percentiles (µs) not sane: %v", c)
	}

	// The CLI, on the deterministic metrics (a golden each for text and
	// JSON); the port of the origin is not in them.
	args := []string{"metrics", "get", "--names", "http.requests,http.status.2xx,http.status.4xx,requests,connections_per_backend,backend.available,backend.up,backend.down"}
	golden(t, "metrics/get.txt.golden", p.MustCLI(args...))
	golden(t, "metrics/get.json.golden", p.MustCLI(append(args, "--json")...))
	golden(t, "metrics/get_list.txt.golden", p.MustCLI("metrics", "get", "--list"))
	// Naming clusters (or backends) answers only those, as upstream does:
	// no proxy-level or main metrics beside them.
	if j := p.MustCLI("metrics", "get", "-k", "app", "--json"); strings.Contains(j, `"proxying"`) || strings.Contains(j, `"main"`) || !strings.Contains(j, `"app"`) {
		t.Errorf("metrics get -k app: %s", j)
	}
	if out := p.MustCLI("metrics", "get", "-w", "--no-clusters", "-n", "http.requests"); strings.Count(out, "worker ") != 2 {
		t.Errorf("metrics get -w shows %d workers:\n%s", strings.Count(out, "worker "), out)
	}

	// list, filters, clear.
	c := sozutest.Dial(t, sock)
	resp := c.MustOK(t, &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: &command.QueryMetricsOptions{
		List: proto.Bool(true), NoClusters: proto.Bool(false), Workers: proto.Bool(false)}}})
	if l := resp.GetContent().GetAvailableMetrics(); len(l.GetProxyMetrics()) == 0 || len(l.GetClusterMetrics()) == 0 {
		t.Errorf("list: %v", resp.GetContent())
	}
	am = queryMetrics(t, sock, &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(true), Workers: proto.Bool(false),
		MetricNames: []string{pm.HTTPRequests}})
	if len(am.GetClusters()) != 0 || len(am.GetProxying()) != 1 {
		t.Errorf("no_clusters and metric_names: %v", am)
	}
	p.MustCLI("metrics", "clear")
	am = queryMetrics(t, sock, nil)
	if got := countOf(am.GetProxying(), pm.HTTPRequests); got != 0 {
		t.Errorf("after clear: %s = %d", pm.HTTPRequests, got)
	}
	// Disabled (as upstream), cluster metrics are not recorded and proxy
	// metrics are: a request while disabled, one after enable, counts 2 at
	// the proxy level and 1 for the cluster.
	p.MustCLI("metrics", "disable")
	getNew(t, "http://"+front+"/")
	p.MustCLI("metrics", "enable")
	getNew(t, "http://"+front+"/")
	var proxyN, clusterN int64
	sozutest.WaitFor(t, 10*time.Second, "both requests are recorded", func() bool {
		am := queryMetrics(t, sock, nil)
		proxyN, clusterN = countOf(am.GetProxying(), pm.HTTPRequests), countOf(am.GetClusters()["app"].GetCluster(), pm.Requests)
		return proxyN >= 2 && clusterN >= 1
	})
	if proxyN != 2 || clusterN != 1 {
		t.Errorf("after disable, a request, enable, a request: %s = %d (want 2), cluster %s = %d (want 1)", pm.HTTPRequests, proxyN, pm.Requests, clusterN)
	}
}

// TCP sessions through 2 workers add up: tcp.requests, the cluster's and
// the backend's requests; once closed, no client connection stays open.
func TestMetricsTCPSessions(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	echo := startRawOrigin(t, tcpEcho)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := tcpEchoConfig(sock, front, echo.addr, 2)
	startProxy(t, dir, sock, cfg)
	echoOnce := func() bool {
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "x"); err != nil {
			return false
		}
		b := make([]byte, 1)
		_, err = io.ReadFull(c, b)
		return err == nil
	}
	// The listener accepts before a worker serves it: wait for an echo.
	sozutest.WaitFor(t, 20*time.Second, "the TCP listener echoes", echoOnce)
	// The sessions so far (the wait's), once they all ended: a session's
	// bytes count when it ends.
	var p *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the first sessions to end", func() bool {
		p = queryMetrics(t, sock, nil)
		return p.GetProxying()[pm.ClientConnections].GetGauge() == 0
	})
	before := countOf(p.GetProxying(), pm.TCPRequests)
	bytesBefore := countOf(p.GetClusters()["echo"].GetCluster(), pm.BytesIn)
	const n = 20
	for range n {
		if !echoOnce() {
			t.Fatal("no echo")
		}
	}
	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "every session is recorded and closed", func() bool {
		am = queryMetrics(t, sock, nil)
		return countOf(am.GetProxying(), pm.TCPRequests) == before+n && am.GetProxying()[pm.ClientConnections].GetGauge() == 0
	})
	cl := am.GetClusters()["echo"]
	if got := countOf(cl.GetCluster(), pm.Requests); got != before+n {
		t.Errorf("cluster requests %d, want %d", got, before+n)
	}
	if b := cl.GetBackends(); len(b) != 1 || b[0].GetBackendId() != "echo-0" || countOf(b[0].GetMetrics(), pm.Requests) != before+n {
		t.Errorf("backends %v", b)
	}
	if c := cl.GetCluster()[pm.BackendConnectionTime].GetPercentiles(); c.GetSamples() != uint64(before+n) {
		t.Errorf("connect time samples %d, want %d", c.GetSamples(), before+n)
	}
	// Each session relayed one byte each way: the bytes count, at the
	// proxy level and for the cluster and backend.
	b := cl.GetBackends()[0].GetMetrics()
	for _, name := range []string{pm.BytesIn, pm.BytesOut} {
		if got := countOf(cl.GetCluster(), name) - bytesBefore; got != n {
			t.Errorf("cluster %s grew by %d, want %d", name, got, n)
		}
		if got, c := countOf(b, name), countOf(cl.GetCluster(), name); got != c {
			t.Errorf("backend %s %d, cluster %d", name, got, c)
		}
		if got, c := countOf(am.GetProxying(), name), countOf(cl.GetCluster(), name); got != c {
			t.Errorf("proxy %s %d, cluster %d", name, got, c)
		}
	}
}

// disable_cluster_metrics = true: per-cluster metrics are not registered
// (upstream's words), proxy metrics are: a request counts at the proxy
// level and query_metrics answers no cluster.
func TestMetricsDisableClusterMetrics(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	startProxy(t, dir, sock, "disable_cluster_metrics = true\n"+simpleHTTPConfig(sock, front, origin.addr, 1), front)
	getNew(t, "http://"+front+"/")
	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the request is recorded", func() bool {
		am = queryMetrics(t, sock, nil)
		return countOf(am.GetProxying(), pm.HTTPRequests) >= 1
	})
	if n := countOf(am.GetProxying(), pm.HTTPRequests); n != 1 {
		t.Errorf("%s = %d, want 1", pm.HTTPRequests, n)
	}
	if len(am.GetClusters()) != 0 {
		t.Errorf("clusters with disable_cluster_metrics: %v", am.GetClusters())
	}
}

// TestMetricsClearZeroesEveryCounter: `sozu metrics clear` zeroes every
// counter, those the workers read from what their servers keep
// (connections.rejected_per_cluster_ip here, like h2.*, the UDP drops,
// health_check.*) as those of the registry, and the supervisor's own
// (prometheus.scrapes here), as upstream's clear wipes the workers'
// drains and its main process's metrics; counting then starts again
// from zero.
func TestMetricsClearZeroesEveryCounter(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := strings.Replace(simpleHTTPConfig(sock, front, origin.addr, 1), "activate_listeners = true", "activate_listeners = true\nmax_connections_per_ip = 1", 1) +
		fmt.Sprintf("\n[metrics]\nprometheus_address = %q\n", prom)
	p := startProxy(t, dir, sock, cfg, front, prom)
	// A scrape: the supervisor's own prometheus.scrapes counts it.
	if resp, err := http.Get("http://" + prom + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// One keep-alive connection holds the client's slot; each other one
	// is refused (429).
	held, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	fmt.Fprintf(held, "GET / HTTP/1.1\r\nHost: app\r\n\r\n")
	if r, err := http.ReadResponse(bufio.NewReader(held), nil); err != nil || r.StatusCode != 200 {
		t.Fatalf("held connection: %v %v", r, err)
	}
	refuse := func() {
		t.Helper()
		code, _ := status(t, "http://"+front+"/")
		if code != "429" {
			t.Fatalf("second connection: %s, want 429", code)
		}
	}
	rejected := func() int64 { return countOf(queryMetrics(t, sock, nil).GetProxying(), pm.RejectedPerIP) }
	refuse()
	refuse()
	sozutest.WaitFor(t, 10*time.Second, "two refusals counted", func() bool { return rejected() == 2 })

	if n := countOf(queryMetrics(t, sock, nil).GetMain(), pm.Scrapes); n != 1 {
		t.Fatalf("%s = %d before the clear, want 1", pm.Scrapes, n)
	}

	p.MustCLI("metrics", "clear")
	am := queryMetrics(t, sock, nil)
	for level, ms := range map[string]map[string]*command.FilteredMetrics{"proxy": am.GetProxying(), "main": am.GetMain()} {
		for name, m := range ms {
			if m.GetCount() != 0 {
				t.Errorf("after clear: %s %s = %d, want 0", level, name, m.GetCount())
			}
		}
	}
	refuse()
	sozutest.WaitFor(t, 10*time.Second, "the refusal after the clear counted", func() bool { return rejected() >= 1 })
	if n := rejected(); n != 1 {
		t.Errorf("after clear and one refusal: %s = %d, want 1", pm.RejectedPerIP, n)
	}
}

// TestMetricsProxyProtocolErrors: upstream's proxy_protocol.errors counts
// the connections of expect_proxy listeners (HTTP and TCP) closed for a
// malformed PROXY header; one closed before sending any is not counted.
func TestMetricsProxyProtocolErrors(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	front, tcpFront := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10

[[listeners]]
protocol = "http"
address = %[2]q
expect_proxy = true

[[listeners]]
protocol = "tcp"
address = %[3]q
expect_proxy = true

[clusters.app]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "*" } ]
backends = [ { address = %[4]q } ]

[clusters.pipe]
protocol = "tcp"
frontends = [ { address = %[3]q } ]
backends = [ { address = %[4]q } ]
`, sock, front, tcpFront, origin.addr)
	startProxy(t, dir, sock, cfg, front, tcpFront) // its readiness probes send nothing: not counted
	for _, a := range []string{front, tcpFront} {
		c, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") // no PROXY header
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, _ := c.Read(make([]byte, 1)); n != 0 {
			t.Errorf("%s: answered a connection without a PROXY header", a)
		}
		c.Close()
	}
	errs := func() int64 { return countOf(queryMetrics(t, sock, nil).GetProxying(), pm.ProxyProtocolErrors) }
	sozutest.WaitFor(t, 10*time.Second, "two malformed PROXY headers counted", func() bool { return errs() >= 2 })
	if n := errs(); n != 2 {
		t.Errorf("%s = %d, want 2", pm.ProxyProtocolErrors, n)
	}
}
