package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// openFDs counts the descriptors process pid holds.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("counting the descriptors of pid %d: %v", pid, err)
	}
	return len(ents)
}

// A local user opening many idle connections to the Prometheus address
// (loopback: every local user reaches it) must not make the supervisor
// hold a descriptor for each: past a bound they are closed at once, so
// the supervisor keeps descriptors for its command socket, audit files
// and workers.
func TestPrometheusConnectionsBounded(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := simpleHTTPConfig(sock, front, origin.addr, 1) + fmt.Sprintf("\n[metrics]\nprometheus_address = %q\n", prom)
	p := startProxy(t, dir, sock, cfg, front, prom)
	pid := p.Cmd.Process.Pid
	base := openFDs(t, pid)

	const n, slack = 300, 16 // the bound is 32 (maxPrometheusConns)
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", prom)
		if err != nil {
			t.Fatalf("connection %d to %s: %v", len(conns), prom, err)
		}
		conns = append(conns, c)
	}
	// The connections past the bound are closed by the supervisor; the
	// descriptor count never grows past the bound meanwhile.
	closed := make([]bool, n)
	peak := 0
	sozutest.WaitFor(t, 30*time.Second, "the supervisor closes the connections past its bound", func() bool {
		peak = max(peak, openFDs(t, pid)-base)
		done := 0
		for i, c := range conns {
			if !closed[i] {
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				var b [1]byte
				if _, err := c.Read(b[:]); err != nil && !strings.Contains(err.Error(), "timeout") {
					closed[i] = true
				}
			}
			if closed[i] {
				done++
			}
		}
		return done >= n-32
	})
	if peak > 32+slack {
		t.Errorf("the supervisor held up to %d more descriptors under %d idle Prometheus connections, want at most %d", peak, n, 32+slack)
	}
	for _, c := range conns {
		c.Close()
	}
	// Scrapes are served again once the idle connections are gone.
	sozutest.WaitFor(t, 20*time.Second, "a scrape answers", func() bool {
		resp, err := http.Get("http://" + prom + "/metrics")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !p.Alive() {
		t.Fatal("the supervisor died")
	}
}

// scrapeValues scrapes prom's /metrics and returns, by family, the value
// of its first sample: a counter's or gauge's value, a summary's count.
func scrapeValues(t *testing.T, prom string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + prom + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if len(f.GetMetric()) == 0 {
			continue
		}
		switch m := f.GetMetric()[0]; {
		case m.GetCounter() != nil:
			out[name] = m.GetCounter().GetValue()
		case m.GetSummary() != nil:
			out[name] = float64(m.GetSummary().GetSampleCount())
		default:
			out[name] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestPrometheusCountersSurviveAWorkerExit: /metrics sums the workers'
// counters; a worker that exits (a crash, a hung worker replaced, an
// upgrade) took its counts out of the sum, so sozu_http_requests_total
// went down to what the other workers had counted. A Prometheus counter
// only goes down to zero, on a restart of what it counts: rate() and
// increase() read any decrease as one, and counted the whole remaining
// total again as new traffic. The counts of the workers gone stay in the
// sums (summaries' _count and _sum too); gauges do not.
func TestPrometheusCountersSurviveAWorkerExit(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := simpleHTTPConfig(sock, front, origin.addr, 2) + fmt.Sprintf("\n[metrics]\nprometheus_address = %q\n", prom)
	startProxy(t, dir, sock, cfg, front, prom)

	// Requests until both workers served some: the one killed then has
	// counts of its own.
	c := sozutest.Dial(t, sock)
	perWorker := func() map[int]int64 {
		resp := c.MustOK(t, &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: &command.QueryMetricsOptions{
			List: proto.Bool(false), NoClusters: proto.Bool(true), Workers: proto.Bool(true)}}})
		out := map[int]int64{}
		for id, w := range resp.GetContent().GetMetrics().GetWorkers() {
			n, _ := strconv.Atoi(id)
			out[n] = w.GetProxy()["http.requests"].GetCount()
		}
		return out
	}
	sent := 0
	sozutest.WaitFor(t, 20*time.Second, "both workers serve requests", func() bool {
		for range 5 {
			getNew(t, "http://"+front+"/")
			sent++
		}
		pw := perWorker()
		return len(pw) == 2 && pw[0] > 0 && pw[1] > 0
	})
	value := func(vs map[string]float64, name string) float64 {
		v, ok := vs[name]
		if !ok {
			t.Fatalf("no %s in the scrape", name)
		}
		return v
	}
	counters := []string{"sozu_http_requests_total", "sozu_cluster_requests_total", "sozu_cluster_backend_response_time_seconds", "sozu_bytes_in_total"}
	// A request is counted once its answer is sent: the client may read
	// the last answer before its worker counts it.
	var before map[string]float64
	sozutest.WaitFor(t, 10*time.Second, "every request sent counted", func() bool {
		before = scrapeValues(t, prom)
		return value(before, "sozu_http_requests_total") == float64(sent)
	})

	pids := workerPIDs(t, sock)
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sozutest.WaitFor(t, 20*time.Second, "the killed worker relaunched", func() bool {
		now := workerPIDs(t, sock)
		return len(now) == 2 && now[0] != pids[0] && now[1] != pids[0]
	})
	after := scrapeValues(t, prom)
	for _, name := range counters {
		if b, a := value(before, name), value(after, name); a < b {
			t.Errorf("%s went down from %v to %v when a worker exited", name, b, a)
		}
	}
	// Traffic after it adds up from there.
	for range 4 {
		getNew(t, "http://"+front+"/")
	}
	var a float64
	sozutest.WaitFor(t, 10*time.Second, "4 more requests counted", func() bool {
		a = value(scrapeValues(t, prom), "sozu_http_requests_total")
		return a >= float64(sent+4)
	})
	if a != float64(sent+4) {
		t.Errorf("sozu_http_requests_total %v after 4 more requests, want %v", a, sent+4)
	}
	if g := value(after, "sozu_workers"); g != 2 {
		t.Errorf("sozu_workers %v, want 2", g)
	}
	// A clear restarts every counter, the gone workers' counts with them.
	c.MustOK(t, &command.Request{RequestType: &command.Request_ConfigureMetrics{ConfigureMetrics: command.MetricsConfiguration_CLEAR}})
	if v := value(scrapeValues(t, prom), "sozu_http_requests_total"); v != 0 {
		t.Errorf("sozu_http_requests_total %v after metrics clear, want 0", v)
	}
}
