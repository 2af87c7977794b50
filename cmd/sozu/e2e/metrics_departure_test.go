package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// heldOrigin answers "/" at once and holds "/held" until release is
// closed; held counts the held requests that arrived.
type heldOrigin struct {
	*httpOrigin
	held    atomic.Int64
	release chan struct{}
}

func startHeldOrigin(t *testing.T) *heldOrigin {
	o := &heldOrigin{release: make(chan struct{})}
	o.httpOrigin = startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/held" {
			o.held.Add(1)
			<-o.release
		}
		w.Write([]byte("ok"))
	}))
	return o
}

// sendHeld starts m requests to /held through front, each on its own
// connection, waits until the origin holds all of them, and returns the
// channel their outcomes arrive on (nil: a 200).
func sendHeld(t *testing.T, o *heldOrigin, front string, m int) <-chan error {
	t.Helper()
	errs := make(chan error, m)
	for range m {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+front+"/held", nil)
			req.Close = true
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("held request: %s", resp.Status)
				}
			}
			errs <- err
		}()
	}
	sozutest.WaitFor(t, 20*time.Second, "the origin holds the requests", func() bool { return o.held.Load() == int64(m) })
	return errs
}

// TestWorkerUpgradeKeepsItsLastCounts: a worker replaced by
// upgrade_worker drains its connections; what it counted after the
// supervisor's last statsd flush and /metrics scrape (here, requests in
// flight when the upgrade began, served while it drained) never reached
// statsd nor the Prometheus totals: the supervisor no longer asked it.
// It now answers its stop with its final metrics, which reach both once:
// statsd adds up to every request, exactly, and so does
// sozu_http_requests_total, the new worker having served none.
func TestWorkerUpgradeKeepsItsLastCounts(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHeldOrigin(t)
	sink := startStatsdSink(t)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := simpleHTTPConfig(sock, front, origin.addr, 1) +
		fmt.Sprintf("\n[metrics]\naddress = %q\nprometheus_address = %q\n", sink.conn.LocalAddr().String(), prom)
	p := startProxy(t, dir, sock, cfg, front, prom)

	reqs := regexp.MustCompile(`^sozu\.WRK-\d+\.http\.requests$`)
	clusterReqs := regexp.MustCompile(`^sozu\.WRK-\d+\.cluster\.app\.requests$`)
	flushes := regexp.MustCompile(`^sozu\.MAIN\.workers:\d+\|g$`) // one per flush
	const n, m, k = 10, 3, 4
	for range n {
		getNew(t, "http://"+front+"/")
	}
	sozutest.WaitFor(t, 20*time.Second, "statsd counts the first requests", func() bool { v, _ := sink.sum(reqs); return v == n })
	if v := scrapeValues(t, prom)["sozu_http_requests_total"]; v != n {
		t.Fatalf("sozu_http_requests_total %v, want %d", v, n)
	}

	// Requests in flight when the upgrade begins, and some served just
	// before it.
	held := sendHeld(t, origin, front, m)
	for range k {
		getNew(t, "http://"+front+"/")
	}
	old := workerPIDs(t, sock)[0]
	if out := p.MustCLI("upgrade", "--worker", "0"); !strings.Contains(out, "drains") {
		t.Fatalf("upgrade --worker 0 answered %q", out)
	}
	// The old worker drains, no longer asked by the flushes.
	f0 := sink.count(flushes)
	sozutest.WaitFor(t, 20*time.Second, "two statsd flushes while the old worker drains", func() bool { return sink.count(flushes) >= f0+2 })
	close(origin.release)
	for range m {
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
	sozutest.WaitFor(t, 20*time.Second, "the old worker exits", func() bool { return gone(old) })

	const total = n + m + k
	sozutest.WaitFor(t, 20*time.Second, "statsd counts every request", func() bool { v, _ := sink.sum(reqs); return v >= total })
	f1 := sink.count(flushes)
	sozutest.WaitFor(t, 20*time.Second, "two more statsd flushes", func() bool { return sink.count(flushes) >= f1+2 })
	if v, _ := sink.sum(reqs); v != total {
		t.Errorf("statsd adds up %d requests, want %d", v, total)
	}
	if v, _ := sink.sum(clusterReqs); v != total {
		t.Errorf("statsd adds up %d cluster requests, want %d", v, total)
	}
	after := scrapeValues(t, prom)
	if v := after["sozu_http_requests_total"]; v != total {
		t.Errorf("sozu_http_requests_total %v after the upgrade, want %d", v, total)
	}
	if v := after["sozu_cluster_requests_total"]; v != total {
		t.Errorf("sozu_cluster_requests_total %v after the upgrade, want %d", v, total)
	}
	// The new worker's traffic adds up from there, once (a request is
	// recorded once its answer is sent: the client may see it first).
	getNew(t, "http://"+front+"/")
	var v float64
	sozutest.WaitFor(t, 20*time.Second, "the scrape counts the new worker's request", func() bool {
		v = scrapeValues(t, prom)["sozu_http_requests_total"]
		return v >= total+1
	})
	if v != total+1 {
		t.Errorf("sozu_http_requests_total %v after one more request, want %d", v, total+1)
	}
	sozutest.WaitFor(t, 20*time.Second, "statsd counts the new worker's request", func() bool { v, _ := sink.sum(reqs); return v >= total+1 })
	if v, _ := sink.sum(reqs); v != total+1 {
		t.Errorf("statsd adds up %d requests, want %d", v, total+1)
	}
}

// TestSoftStopSendsTheLastCounts: a soft stop of the proxy lets the
// workers drain; the requests they served meanwhile reach statsd before
// the supervisor exits (its last flush takes the workers' final metrics).
func TestSoftStopSendsTheLastCounts(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHeldOrigin(t)
	sink := startStatsdSink(t)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := simpleHTTPConfig(sock, front, origin.addr, 1) + fmt.Sprintf("\n[metrics]\naddress = %q\n", sink.conn.LocalAddr().String())
	p := startProxy(t, dir, sock, cfg, front)

	reqs := regexp.MustCompile(`^sozu\.WRK-00\.http\.requests$`)
	const n, m = 5, 2
	for range n {
		getNew(t, "http://"+front+"/")
	}
	sozutest.WaitFor(t, 20*time.Second, "statsd counts the first requests", func() bool { v, _ := sink.sum(reqs); return v == n })
	held := sendHeld(t, origin, front, m)

	c := sozutest.Dial(t, sock)
	stopped := make(chan *command.Response, 1)
	go func() {
		_, resp := c.Do(t, &command.Request{RequestType: &command.Request_SoftStop{SoftStop: &command.SoftStop{}}})
		stopped <- resp
	}()
	sozutest.WaitFor(t, 20*time.Second, "the soft stop shuts the listener", func() bool {
		conn, err := net.DialTimeout("tcp", front, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	close(origin.release)
	for range m {
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
	if resp := <-stopped; resp.GetStatus() != command.ResponseStatus_OK {
		t.Fatalf("soft stop: %v", resp)
	}
	select {
	case <-p.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("the supervisor did not exit after the soft stop")
	}
	sozutest.WaitFor(t, 10*time.Second, "statsd counts the requests served while draining", func() bool { v, _ := sink.sum(reqs); return v >= n+m })
	if v, _ := sink.sum(reqs); v != n+m {
		t.Errorf("statsd adds up %d requests, want %d", v, n+m)
	}
}

// TestWorkerUpgradeKeepsTCPSessionBytes: a TCP session counts its bytes
// when it ends; one that ends while its worker drains after
// upgrade_worker reaches statsd and the Prometheus totals through the
// worker's final metrics, exactly.
func TestWorkerUpgradeKeepsTCPSessionBytes(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	echo := startRawOrigin(t, tcpEcho)
	sink := startStatsdSink(t)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	cfg := tcpEchoConfig(sock, front, echo.addr, 1) +
		fmt.Sprintf("\n[metrics]\naddress = %q\nprometheus_address = %q\n", sink.conn.LocalAddr().String(), prom)
	p := startProxy(t, dir, sock, cfg, prom)

	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err != nil {
			return nil
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	echoes := func(c net.Conn, s string) bool {
		if _, err := c.Write([]byte(s)); err != nil {
			return false
		}
		b := make([]byte, len(s))
		_, err := io.ReadFull(c, b)
		return err == nil && string(b) == s
	}
	// The listener accepts before the worker serves it: wait for an echo,
	// and for the sessions of the wait to end.
	sozutest.WaitFor(t, 20*time.Second, "the TCP listener echoes", func() bool {
		c := dial()
		if c == nil {
			return false
		}
		defer c.Close()
		return echoes(c, "x")
	})
	var before int64
	bytesIn := regexp.MustCompile(`^sozu\.WRK-\d+\.cluster\.echo\.bytes_in$`)
	sozutest.WaitFor(t, 20*time.Second, "the first sessions to end, their bytes in statsd", func() bool {
		am := queryMetrics(t, sock, nil)
		before = countOf(am.GetClusters()["echo"].GetCluster(), pm.BytesIn)
		v, _ := sink.sum(bytesIn)
		return am.GetProxying()[pm.ClientConnections].GetGauge() == 0 && v == before
	})
	if v := scrapeValues(t, prom)["sozu_cluster_bytes_in_total"]; int64(v) != before {
		t.Fatalf("sozu_cluster_bytes_in_total %v, want %d", v, before)
	}

	// A session open across the upgrade, echoing before and during the
	// old worker's drain.
	c := dial()
	if c == nil || !echoes(c, "hello") {
		t.Fatal("no echo")
	}
	old := workerPIDs(t, sock)[0]
	if out := p.MustCLI("upgrade", "--worker", "0"); !strings.Contains(out, "drains") {
		t.Fatalf("upgrade --worker 0 answered %q", out)
	}
	if !echoes(c, "world!!") {
		t.Fatal("no echo while the worker drains")
	}
	c.Close()
	sozutest.WaitFor(t, 20*time.Second, "the old worker exits", func() bool { return gone(old) })

	total := before + int64(len("hello")+len("world!!"))
	sozutest.WaitFor(t, 20*time.Second, "statsd counts the session's bytes", func() bool { v, _ := sink.sum(bytesIn); return v >= total })
	flushes := regexp.MustCompile(`^sozu\.MAIN\.workers:\d+\|g$`)
	f0 := sink.count(flushes)
	sozutest.WaitFor(t, 20*time.Second, "two more statsd flushes", func() bool { return sink.count(flushes) >= f0+2 })
	if v, _ := sink.sum(bytesIn); v != total {
		t.Errorf("statsd adds up %d bytes in, want %d", v, total)
	}
	if v := scrapeValues(t, prom)["sozu_cluster_bytes_in_total"]; int64(v) != total {
		t.Errorf("sozu_cluster_bytes_in_total %v after the upgrade, want %d", v, total)
	}
}

// TestWorkerAnswerLargerThanTheChannel: a worker whose metrics do not fit
// max_command_buffer_size (201 clusters at the 16 KiB floor: some 30 KB)
// answers query_metrics FAILURE and goes on serving, and stops cleanly,
// its stop answered FAILURE instead of its final metrics (it exited with
// status 1 without answering, the stop counting it an error).
func TestWorkerAnswerLargerThanTheChannel(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	origin := startHeldOrigin(t)
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	var b strings.Builder
	b.WriteString(strings.Replace(simpleHTTPConfig(sock, front, origin.addr, 1),
		"worker_timeout = 10\n", "worker_timeout = 10\ncommand_buffer_size = 16384\nmax_command_buffer_size = 16384\n", 1))
	for i := range 200 {
		fmt.Fprintf(&b, "\n[clusters.c%03d]\nprotocol = \"http\"\nfrontends = [ { address = %q, hostname = \"h%03d.test\" } ]\nbackends = [ { address = %q } ]\n",
			i, front, i, origin.addr)
	}
	p := startProxy(t, dir, sock, b.String(), front)
	c := sozutest.Dial(t, sock)
	_, resp := c.Do(t, &command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: &command.QueryMetricsOptions{}}})
	if resp.GetStatus() != command.ResponseStatus_FAILURE || !strings.Contains(resp.GetMessage(), "answer too large for the worker channel") {
		t.Errorf("query_metrics: %v, want a FAILURE naming the answer too large", resp)
	}
	getNew(t, "http://"+front+"/") // the worker still serves
	_, resp = c.Do(t, &command.Request{RequestType: &command.Request_SoftStop{SoftStop: &command.SoftStop{}}})
	if !strings.Contains(resp.GetMessage(), "closed 1 workers, 0 errors") {
		t.Errorf("soft stop: %q, want the worker closed without error", resp.GetMessage())
	}
	select {
	case <-p.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("the supervisor did not exit after the soft stop")
	}
	if out := p.Out.String(); strings.Contains(out, "exit status 1") {
		t.Errorf("a worker exited with status 1:\n%s", out)
	}
}
