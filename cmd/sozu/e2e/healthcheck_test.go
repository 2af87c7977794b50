package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// eventLog subscribes to the proxy's events and keeps them.
type eventLog struct {
	mu  sync.Mutex
	evs []*command.Event
}

func subscribeEvents(t *testing.T, sock string) *eventLog {
	t.Helper()
	c := sozutest.Dial(t, sock)
	sub := &command.Request{RequestType: &command.Request_SubscribeEvents{SubscribeEvents: &command.SubscribeEvents{}}}
	if err := frame.WriteMessage(c.Conn, sub, frame.DefaultMaxSize); err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	subscribed := make(chan struct{})
	var once sync.Once // the subscription's own EVENTS_SUBSCRIBED, its first event
	go func() {
		r := frame.NewReader(c.Conn, frame.DefaultMaxSize)
		for {
			resp := &command.Response{}
			if r.ReadMessage(resp) != nil {
				return
			}
			if ev := resp.GetContent().GetEvent(); ev != nil {
				if ev.GetKind() == command.EventKind_EVENTS_SUBSCRIBED {
					once.Do(func() { close(subscribed) })
				}
				l.mu.Lock()
				l.evs = append(l.evs, ev)
				l.mu.Unlock()
			}
		}
	}()
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("no EVENTS_SUBSCRIBED")
	}
	return l
}

// count returns how many events of kind concern cluster (and backend, when
// not "").
func (l *eventLog) count(kind command.EventKind, cluster, backend string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.evs {
		if ev.GetKind() == kind && ev.GetClusterId() == cluster && (backend == "" || ev.GetBackendId() == backend) {
			n++
		}
	}
	return n
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, ev := range l.evs {
		fmt.Fprintf(&b, "%v %s/%s; ", ev.GetKind(), ev.GetClusterId(), ev.GetBackendId())
	}
	return b.String()
}

// waitWithin waits for cond, failing the test when it does not hold within
// d of since; it returns when it held.
func waitWithin(t *testing.T, since time.Time, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for !cond() {
		if time.Since(since) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of the condition, not a synchronisation
	}
	return time.Since(since)
}

// TestHealthCheckHTTP: a backend whose /health starts failing leaves
// rotation within interval × unhealthy_threshold (+ timeout) in both
// workers and comes back after healthy_threshold successes; the events
// arrive once per change although two workers probe; upstream's
// health_check.* metrics count probes, changes and healthy backends; the
// probes carry no header of any client.
func TestHealthCheckHTTP(t *testing.T) {
	const (
		interval  = time.Second
		timeout   = time.Second
		threshold = 2
		slack     = 1500 * time.Millisecond // scheduling on a loaded machine
	)
	var failing atomic.Bool
	var probeMu sync.Mutex
	var probeHeads []http.Header
	origin := func(name string, flaky bool) *httpOrigin {
		return startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				probeMu.Lock()
				probeHeads = append(probeHeads, r.Header.Clone())
				probeMu.Unlock()
				if flaky && failing.Load() {
					http.Error(w, "sick", http.StatusServiceUnavailable)
					return
				}
			}
			io.WriteString(w, name)
		}))
	}
	good, flaky := origin("good", false), origin("flaky", true)

	dir := t.TempDir()
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "http"
address = %[2]q

[clusters.web]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "web.test" } ]
backends = [ { address = %[3]q, backend_id = "good" }, { address = %[4]q, backend_id = "flaky" } ]

[clusters.web.health_check]
uri = "/health"
interval = %[5]d
timeout = %[6]d
healthy_threshold = %[7]d
unhealthy_threshold = %[7]d
`, sock, front, good.addr, flaky.addr, int(interval/time.Second), int(timeout/time.Second), threshold)
	p := startProxy(t, dir, sock, cfg, front)
	events := subscribeEvents(t, sock)

	// who sends n requests on new connections (so both workers serve
	// them), with client credentials, and counts the answering backends.
	who := func(n int) map[string]int {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			code, body := status(t, "-H", "Host: web.test", "-H", "Authorization: Bearer client-secret",
				"-H", "Cookie: session=client-cookie", "http://"+front+"/")
			if code != "200" {
				t.Fatalf("request %d: %s %q", i, code, body)
			}
			seen[body]++
		}
		return seen
	}
	sozutest.WaitFor(t, 20*time.Second, "both backends serving", func() bool {
		s := who(10)
		return s["good"] > 0 && s["flaky"] > 0
	})

	failStart := time.Now()
	failing.Store(true)
	bound := interval*threshold + timeout + slack
	took := waitWithin(t, failStart, bound, "flaky out of rotation in both workers", func() bool {
		return who(10)["flaky"] == 0 && who(10)["flaky"] == 0
	})
	t.Logf("out of rotation after %v (bound %v + slack)", took, bound-slack)
	waitWithin(t, failStart, bound, "HEALTH_CHECK_UNHEALTHY and BACKEND_DOWN for flaky", func() bool {
		return events.count(command.EventKind_HEALTH_CHECK_UNHEALTHY, "web", "flaky") > 0 &&
			events.count(command.EventKind_BACKEND_DOWN, "web", "flaky") > 0
	})
	if p.Cmd.ProcessState != nil || !p.Alive() {
		t.Fatal("the proxy died")
	}
	// Upstream's health_check.healthy_backends, per cluster: one of two
	// (each worker probes both; merged by the maximum, not summed).
	healthy := func() uint64 {
		return queryMetrics(t, sock, nil).GetClusters()["web"].GetCluster()[pm.HealthyBackends].GetGauge()
	}
	sozutest.WaitFor(t, 10*time.Second, "health_check.healthy_backends of web at 1", func() bool { return healthy() == 1 })

	recovered := time.Now()
	failing.Store(false)
	bound = interval*threshold + timeout + slack
	took = waitWithin(t, recovered, bound, "flaky back in rotation", func() bool {
		s := who(10)
		return s["flaky"] > 0
	})
	t.Logf("back in rotation after %v", took)
	// Both workers put it back: the last one makes the up events.
	waitWithin(t, recovered, bound, "HEALTH_CHECK_HEALTHY and BACKEND_UP for flaky", func() bool {
		return events.count(command.EventKind_HEALTH_CHECK_HEALTHY, "web", "flaky") > 0 &&
			events.count(command.EventKind_BACKEND_UP, "web", "flaky") > 0
	})
	for _, k := range []command.EventKind{command.EventKind_HEALTH_CHECK_UNHEALTHY, command.EventKind_BACKEND_DOWN,
		command.EventKind_HEALTH_CHECK_HEALTHY, command.EventKind_BACKEND_UP} {
		if n := events.count(k, "web", "flaky"); n != 1 {
			t.Errorf("%v for flaky: %d events from two workers, want 1 (events: %s)", k, n, events)
		}
	}
	if n := events.count(command.EventKind_HEALTH_CHECK_UNHEALTHY, "web", "good"); n != 0 {
		t.Errorf("the good backend was reported unhealthy: %s", events)
	}
	// upstream's backend.up and backend.down count the moves (per worker,
	// summed): flaky went down and up, good never moved.
	moves := map[string][2]int64{}
	for _, b := range queryMetrics(t, sock, nil).GetClusters()["web"].GetBackends() {
		m := b.GetMetrics()
		moves[b.GetBackendId()] = [2]int64{m[pm.BackendUp].GetCount(), m[pm.BackendDown].GetCount()}
	}
	if f, g := moves["flaky"], moves["good"]; f[0] < 1 || f[1] < 1 || g != [2]int64{} {
		t.Errorf("backend.up/backend.down: flaky %v, good %v; want flaky at least 1 each, good 0", f, g)
	}
	// Upstream's proxy-level health_check.* counters: flaky went down and
	// came back in each worker (two of each), after failed and passed
	// probes; and the cluster's healthy backends are two again.
	sozutest.WaitFor(t, 10*time.Second, "health_check.healthy_backends of web back at 2", func() bool { return healthy() == 2 })
	var px map[string]*command.FilteredMetrics
	sozutest.WaitFor(t, 10*time.Second, "health_check.up at 2 (both workers)", func() bool {
		px = queryMetrics(t, sock, nil).GetProxying()
		return px[pm.HealthCheckUp].GetCount() >= 2
	})
	if ok, ko, up, down := px[pm.HealthCheckSuccess].GetCount(), px[pm.HealthCheckFailure].GetCount(),
		px[pm.HealthCheckUp].GetCount(), px[pm.HealthCheckDown].GetCount(); ok == 0 || ko < 2*threshold || up != 2 || down != 2 {
		t.Errorf("health_check.success %d, .failure %d, .up %d, .down %d; want > 0, >= %d, 2, 2", ok, ko, up, down, 2*threshold)
	}

	probeMu.Lock()
	defer probeMu.Unlock()
	if len(probeHeads) == 0 {
		t.Fatal("no probe reached the backends")
	}
	for _, h := range probeHeads {
		if h.Get("Authorization") != "" || h.Get("Cookie") != "" || h.Get("User-Agent") != "sozu-health-check" || len(h) != 3 {
			t.Fatalf("probe headers %v: want only User-Agent, Accept, Connection", h)
		}
	}
}

// TestHealthCheckTCP: a health check set with the CLI on a TCP cluster
// probes by connect; with no client traffic at all (so no passive failure
// counting), a backend that stops listening is taken out and comes back
// when it listens again.
func TestHealthCheckTCP(t *testing.T) {
	named := func(name string) func(net.Conn) {
		return func(c net.Conn) {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, name+"\n")
			io.Copy(io.Discard, c)
		}
	}
	a := startRawOrigin(t, named("a"))
	// b is a listener the test closes and reopens on the same port.
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bAddr := bln.Addr().String()
	serveB := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); named("b")(c) }()
		}
	}
	go serveB(bln)
	t.Cleanup(func() { bln.Close() })

	dir := t.TempDir()
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "tcp"
address = %[2]q

[clusters.db]
protocol = "tcp"
frontends = [ { address = %[2]q } ]
backends = [ { address = %[3]q, backend_id = "a" }, { address = %[4]q, backend_id = "b" } ]
`, sock, front, a.addr, bAddr)
	p := startProxy(t, dir, sock, cfg, front)
	events := subscribeEvents(t, sock)
	p.MustCLI("cluster", "health-check", "set", "--id", "db", "--uri", "/", "--interval", "1", "--timeout", "1",
		"--healthy-threshold", "2", "--unhealthy-threshold", "2")
	if out := p.MustCLI("cluster", "health-check", "list", "--id", "db"); !strings.Contains(out, "db") || !strings.Contains(out, "1s") {
		t.Fatalf("health-check list: %q", out)
	}

	// greet opens n connections and counts the backends that greet.
	greet := func(n int) map[string]int {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", front, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			l, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			seen[strings.TrimSpace(l)]++
		}
		return seen
	}
	if s := greet(10); s["a"] == 0 || s["b"] == 0 {
		t.Fatalf("before: backends seen %v, want both", s)
	}

	bln.Close() // b is dead; no client connects while the probes find out
	dead := time.Now()
	bound := 2*time.Second + time.Second + 1500*time.Millisecond
	waitWithin(t, dead, bound, "HEALTH_CHECK_UNHEALTHY for b", func() bool {
		return events.count(command.EventKind_HEALTH_CHECK_UNHEALTHY, "db", "b") > 0
	})
	if events.count(command.EventKind_HEALTH_CHECK_UNHEALTHY, "db", "a") != 0 {
		t.Fatalf("a reported unhealthy: %s", events)
	}
	// The second worker is within the same bound.
	waitWithin(t, dead, bound, "every connection to a", func() bool {
		s := greet(10)
		return s["a"] == 10
	})

	bln, err = net.Listen("tcp", bAddr)
	if err != nil {
		t.Skipf("port of b taken meanwhile: %v", err)
	}
	go serveB(bln)
	back := time.Now()
	waitWithin(t, back, bound, "HEALTH_CHECK_HEALTHY for b", func() bool {
		return events.count(command.EventKind_HEALTH_CHECK_HEALTHY, "db", "b") > 0
	})
	waitWithin(t, back, bound, "b serving again", func() bool { return greet(10)["b"] > 0 })

	// Removing the health check keeps everything in rotation.
	p.MustCLI("cluster", "health-check", "remove", "--id", "db")
	if out := p.MustCLI("cluster", "health-check", "list"); !strings.Contains(out, "no health checks") {
		t.Fatalf("health-check list after remove: %q", out)
	}
}

// TestHealthCheckH2C: a cluster with http2 = true is probed in HTTP/2
// with prior knowledge, as its requests go, so h2c-only backends (which
// refuse HTTP/1.1) are probed at all: the healthy one answers probes and
// is never taken down, the one answering 503 is.
func TestHealthCheckH2C(t *testing.T) {
	var probes atomic.Int64
	backend := func(sick bool) *h2cOrigin {
		return startH2COrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				if r.ProtoMajor != 2 {
					t.Errorf("probe in HTTP/%d.%d", r.ProtoMajor, r.ProtoMinor)
				}
				if sick {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				probes.Add(1)
			}
			io.WriteString(w, "ok")
		}), 100)
	}
	good, sick := backend(false), backend(true)
	dir := t.TempDir()
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "http"
address = %[2]q

[clusters.h2]
protocol = "http"
http2 = true
frontends = [ { address = %[2]q, hostname = "h2.test" } ]
backends = [ { address = %[3]q, backend_id = "good" }, { address = %[4]q, backend_id = "sick" } ]

[clusters.h2.health_check]
uri = "/health"
interval = 1
timeout = 1
healthy_threshold = 1
unhealthy_threshold = 1
`, sock, front, good.addr, sick.addr)
	startProxy(t, dir, sock, cfg, front)
	events := subscribeEvents(t, sock)
	sozutest.WaitFor(t, 20*time.Second, "the 503 backend taken down and 3 probes answered by the good one", func() bool {
		return events.count(command.EventKind_HEALTH_CHECK_UNHEALTHY, "h2", "sick") > 0 && probes.Load() >= 3
	})
	if n := events.count(command.EventKind_HEALTH_CHECK_UNHEALTHY, "h2", "good"); n > 0 {
		t.Errorf("the healthy h2c backend was taken down %d times:\n%s", n, events)
	}
	for i := 0; i < 5; i++ {
		if code, body := status(t, "-H", "Host: h2.test", "http://"+front+"/"); code != "200" || body != "ok" {
			t.Fatalf("request %d: %s %q", i, code, body)
		}
	}
}
