package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

func queryMetrics(t *testing.T, sock string, opt *command.QueryMetricsOptions) *command.AggregatedMetrics {
	t.Helper()
	if opt == nil {
		opt = &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(false), Workers: proto.Bool(false)}
	}
	c := sozutest.Dial(t, sock)
	resp := c.MustOK(t, &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: opt}})
	am := resp.GetContent().GetMetrics()
	if am == nil {
		t.Fatalf("query_metrics answered no AggregatedMetrics: %v", resp)
	}
	return am
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
	startProxy(t, dir, sock, simpleHTTPConfig(sock, front, origin.addr, 2), front)

	const ok, missing = 60, 7
	// New connections each time: the kernel spreads them over both workers.
	for i := 0; i < ok+missing; i++ {
		path := "/"
		if i < missing {
			path = "/missing"
		}
		req, _ := http.NewRequest("GET", "http://"+front+path, nil)
		req.Close = true
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	am := queryMetrics(t, sock, &command.QueryMetricsOptions{List: proto.Bool(false), NoClusters: proto.Bool(false), Workers: proto.Bool(true)})
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
	if b[pm.BackendUp].GetGauge() != 1 || b[pm.BackendDown].GetGauge() != 0 {
		t.Errorf("backend up/down = %d/%d, want 1/0", b[pm.BackendUp].GetGauge(), b[pm.BackendDown].GetGauge())
	}
	p := cl.GetCluster()[pm.BackendResponseTime].GetPercentiles()
	if p.GetSamples() != ok+missing {
		t.Errorf("response time samples = %d, want %d", p.GetSamples(), ok+missing)
	}
	// 2 ms of sleep in the origin: the median of all (the 404s are fast)
	// is above it, give or take the sketch's 1 %; the percentiles are
	// ordered.
	if p.GetP_50() < 1900 || p.GetP_50() > p.GetP_90() || p.GetP_90() > p.GetP_99() || p.GetP_99() > p.GetP_100() {
		t.Errorf("response time percentiles (µs) not sane: %v", p)
	}
	if c := cl.GetCluster()[pm.BackendConnectionTime].GetPercentiles(); c.GetSamples() == 0 || c.GetP_50() > 100_000 {
		t.Errorf("connect time percentiles (µs) not sane: %v", c)
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
	c.MustOK(t, &command.Request{RequestType: &command.Request_ConfigureMetrics{ConfigureMetrics: command.MetricsConfiguration_CLEAR}})
	am = queryMetrics(t, sock, nil)
	if got := countOf(am.GetProxying(), pm.HTTPRequests); got != 0 {
		t.Errorf("after clear: %s = %d", pm.HTTPRequests, got)
	}
}
