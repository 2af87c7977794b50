package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/accesslog/accesslogtest"
	"github.com/sozu-go/sozu/worker/metrics"
)

// Each answered request is recorded once, at its end, with its status
// class, cluster and backend, bytes and times: forwarded ones, the
// backend's own errors and the proxy's answers (400 before any route,
// 503 of a cluster without backend).
func TestRequestMetrics(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		time.Sleep(time.Millisecond)
		io.WriteString(w, "hello")
	})
	reg := metrics.New()
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil, Options{Metrics: reg})
	cl := client()
	for i := range 10 {
		path := "/"
		if i%5 == 0 {
			path = "/missing"
		}
		resp, err := cl.Get("http://" + f.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := exchangeRaw(t, f.addr, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Fatalf("two Host fields: %q", got)
	}
	// A request is recorded just after its answer went out.
	waitFor(t, "11 requests recorded", func() bool {
		return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 11
	})
	wm := reg.Snapshot()
	p := wm.GetProxy()
	for name, want := range map[string]int64{pm.Status2xx: 8, pm.Status4xx: 3, pm.HTTPErrors: 1} {
		if got := p[name].GetCount(); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if p[pm.BytesIn].GetCount() < 11*16 || p[pm.BytesOut].GetCount() < 11*50 {
		t.Errorf("bytes in %d, out %d", p[pm.BytesIn].GetCount(), p[pm.BytesOut].GetCount())
	}
	c := wm.GetClusters()["c"]
	if c == nil || c.GetCluster()[pm.Requests].GetCount() != 10 {
		t.Fatalf("cluster c: %v", c)
	}
	be := c.GetBackends()
	if len(be) != 1 || be[0].GetBackendId() != "c-a" || be[0].GetMetrics()[pm.Status4xx].GetCount() != 2 {
		t.Fatalf("backends: %v", be)
	}
	resp := c.GetCluster()[pm.BackendResponseTime].GetHistogram()
	conn := c.GetCluster()[pm.BackendConnectionTime].GetHistogram()
	if resp.GetCount() != 10 || conn.GetCount() == 0 || conn.GetCount() > 4 {
		t.Errorf("response time samples %d (want 10), connect samples %d (new connections only)", resp.GetCount(), conn.GetCount())
	}
	if resp.GetSum() < uint64(8*time.Millisecond) {
		t.Errorf("response times add up to %v, below the backend's own sleeps", time.Duration(resp.GetSum()))
	}

	// A cluster without backends: the proxy's 503, counted on the cluster.
	f2 := newFixtureWith(t, anyHost("empty"), map[string][]string{"empty": nil}, nil, Options{Metrics: reg})
	if got := exchangeRaw(t, f2.addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 503") {
		t.Fatalf("no backend: %q", got)
	}
	waitFor(t, "the 503 recorded", func() bool {
		e := reg.Snapshot().GetClusters()["empty"]
		return e != nil && e.GetCluster()[pm.Status5xx].GetCount() == 1
	})
	if got := reg.Snapshot().GetProxy()[pm.HTTPErrors].GetCount(); got != 2 {
		t.Errorf("%s = %d, want 2", pm.HTTPErrors, got)
	}
}

// HTTP/2 streams are requests like HTTP/1.1 ones; the connection is one
// client connection and one TLS 1.3 handshake.
func TestH2StreamMetrics(t *testing.T) {
	b := h2Backend(t)
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2", "http/1.1"}
	reg := metrics.New()
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf }, Options{Metrics: reg})
	c := h2Client("a.test")
	for range 5 {
		resp, err := c.Get("https://" + f.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitFor(t, "5 streams recorded", func() bool {
		return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 5
	})
	p := reg.Snapshot().GetProxy()
	if p[pm.Status2xx].GetCount() != 5 || p[pm.TLSv13].GetCount() != 1 || p[pm.AcceptedConnections].GetCount() != 1 || p[pm.ClientConnections].GetGauge() != 1 {
		t.Errorf("proxy metrics: %v", p)
	}
	if n := reg.Snapshot().GetClusters()["c"].GetCluster()[pm.Requests].GetCount(); n != 5 {
		t.Errorf("cluster requests %d, want 5", n)
	}
}

// The proxy's own answer is recorded when it is written, not after the
// linger that follows it (up to 500 ms while the client keeps its side
// open): request_time is the request's, not the linger's.
func TestOwnAnswerTimedBeforeLinger(t *testing.T) {
	reg := metrics.New()
	f := newFixtureWith(t, anyHost("empty"), map[string][]string{"empty": nil}, nil, Options{Metrics: reg})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // open until the end: the proxy lingers its full time
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	head, err := readHeadFrom(bufio.NewReader(c))
	if err != nil || !strings.HasPrefix(head, "HTTP/1.1 503") {
		t.Fatalf("answer %q, %v", head, err)
	}
	start := time.Now()
	waitFor(t, "the 503 recorded", func() bool { // End counts it, then times it
		p := reg.Snapshot().GetProxy()
		return p[pm.Status5xx].GetCount() == 1 && p[pm.RequestTime].GetHistogram().GetCount() == 1
	})
	if d := time.Since(start); d >= lingerTime/2 {
		t.Errorf("recorded %v after the answer: after the linger", d)
	}
	h := reg.Snapshot().GetProxy()[pm.RequestTime].GetHistogram()
	if h.GetCount() != 1 || time.Duration(h.GetSum()) >= lingerTime/2 {
		t.Errorf("request_time %v over %d samples, want one well below the linger (%v)", time.Duration(h.GetSum()), h.GetCount(), lingerTime)
	}
}

// A head the parse refuses (its end found, a field or the version wrong)
// counts its bytes in bytes_in and its time in request_time, as its
// access record does: every answered request that arrived has a sample.
func TestRefusedHeadMetrics(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		status    string
	}{
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400"},
		{"space in a field name", "GET /bad HTTP/1.1\r\nHost: a\r\nBad Field: x\r\n\r\n", "HTTP/1.1 400"},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := metrics.New()
			f := newFixtureWith(t, anyHost("empty"), map[string][]string{"empty": nil}, nil, Options{Metrics: reg})
			if got := exchangeRaw(t, f.addr, tc.raw); !strings.HasPrefix(got, tc.status) {
				t.Fatalf("answer %q, want %s", got, tc.status)
			}
			waitFor(t, "the answer recorded", func() bool {
				return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 1
			})
			p := reg.Snapshot().GetProxy()
			if got := p[pm.BytesIn].GetCount(); got != int64(len(tc.raw)) {
				t.Errorf("%s = %d, want the %d bytes of the head", pm.BytesIn, got, len(tc.raw))
			}
			for _, name := range []string{pm.RequestTime, pm.ServiceTime} {
				if n := p[name].GetHistogram().GetCount(); n != 1 {
					t.Errorf("%s has %d samples, want 1", name, n)
				}
			}
		})
	}
}

// A request its client leaves (mid-head, or mid-body while the backend
// reads it) got no answer: it is not counted as a request, but the bytes
// read of it count in bytes_in, of the proxy, its cluster and its backend,
// as read (a Content-Length body as far as it came), as its access record
// counts them.
func TestLeftRequestBytes(t *testing.T) {
	arrived := make(chan struct{}, 1)
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		io.Copy(io.Discard, r.Body) // until the proxy gives the request up
	})
	for _, tc := range []struct {
		name, raw string
		backend   bool // the request reaches the backend before its client leaves
	}{
		{"mid-head", "GET / HTTP/1.1\r\nHost: a\r\nX-Half: ", false},
		{"mid-body", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("b", 100), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := metrics.New()
			f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil, Options{Metrics: reg})
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, tc.raw)
			if tc.backend {
				select {
				case <-arrived:
				case <-time.After(5 * time.Second):
					t.Fatal("the request did not reach the backend")
				}
			}
			c.Close()
			waitFor(t, "the bytes recorded", func() bool { return reg.Snapshot().GetProxy()[pm.BytesIn].GetCount() != 0 })
			wm := reg.Snapshot()
			if got := wm.GetProxy()[pm.BytesIn].GetCount(); got != int64(len(tc.raw)) {
				t.Errorf("%s = %d, want the %d bytes the client sent", pm.BytesIn, got, len(tc.raw))
			}
			if got := wm.GetProxy()[pm.HTTPRequests].GetCount(); got != 0 {
				t.Errorf("%s = %d, want 0: the request got no answer", pm.HTTPRequests, got)
			}
			if !tc.backend {
				return
			}
			cl := wm.GetClusters()["c"]
			if got := cl.GetCluster()[pm.BytesIn].GetCount(); got != int64(len(tc.raw)) || cl.GetCluster()[pm.Requests].GetCount() != 0 {
				t.Errorf("cluster %s = %d (want %d), %s = %d (want 0)", pm.BytesIn, got, len(tc.raw), pm.Requests, cl.GetCluster()[pm.Requests].GetCount())
			}
			if be := cl.GetBackends(); len(be) != 1 || be[0].GetMetrics()[pm.BytesIn].GetCount() != int64(len(tc.raw)) {
				t.Errorf("backends: %v", be)
			}
		})
	}
}

// A request answered before its body came (503: no backend) counts in
// bytes_in what was read of it, not the length its head declared.
func TestAnsweredBeforeBodyBytes(t *testing.T) {
	reg := metrics.New()
	f := newFixtureWith(t, anyHost("empty"), map[string][]string{"empty": nil}, nil, Options{Metrics: reg})
	raw := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
	if got := exchangeRaw(t, f.addr, raw); !strings.HasPrefix(got, "HTTP/1.1 503") {
		t.Fatalf("answer %q, want a 503", got)
	}
	waitFor(t, "the 503 recorded", func() bool { return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 1 })
	if got := reg.Snapshot().GetProxy()[pm.BytesIn].GetCount(); got != int64(len(raw)) {
		t.Errorf("%s = %d, want the %d bytes of the head (no byte of the body came)", pm.BytesIn, got, len(raw))
	}
}

// A connection closed (FIN or reset) before it sent a byte (a TCP health
// check, a port scan) is no failed TLS handshake; one that sent something
// else, or a ClientHello cut short, is.
func TestHandshakeErrorsLeaveProbesOut(t *testing.T) {
	reg := metrics.New()
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {"127.0.0.1:1"}}, func(l *Listener) { l.TLS = testTLSConfig(t, "a.test") }, Options{Metrics: reg})
	send := func(b []byte) {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(b)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // until the proxy closes
		c.Close()
	}
	accepted := func(n int64) func() bool {
		return func() bool {
			return reg.Snapshot().GetProxy()[pm.AcceptedConnections].GetCount() == n && f.srv.Sessions() == 0
		}
	}
	for range 3 {
		send(nil)
	}
	for range 2 { // HAProxy's and kubelet's TCP checks end with a reset
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	waitFor(t, "5 probes served", accepted(5))
	if n := reg.Snapshot().GetProxy()[pm.TLSHandshakeErrors].GetCount(); n != 0 {
		t.Errorf("%d handshake errors for 5 probes, want 0", n)
	}
	send([]byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")) // plain HTTP to a TLS port
	send([]byte{0x16, 0x03, 0x01, 0x00, 0x80, 0x01})       // a ClientHello cut short
	waitFor(t, "2 failed handshakes recorded", func() bool {
		return reg.Snapshot().GetProxy()[pm.TLSHandshakeErrors].GetCount() == 2
	})
}

// TestServiceTimeOneDefinition: service_time is the request's time less
// its backend's part (from the first connect attempt to the end of the
// answer), in the metrics as in the access record, whether cluster
// metrics are on or not. The metrics took the backend's part only from
// a request attributed to a cluster: with cluster metrics off
// (configure_metrics), every forwarded request's service_time was its
// whole request_time, backend's wait included.
func TestServiceTimeOneDefinition(t *testing.T) {
	const wait = 150 * time.Millisecond
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(wait) // the backend's part
		io.WriteString(w, "hello")
	})
	for _, clusterOn := range []bool{true, false} {
		reg := metrics.New()
		reg.SetClusterMetrics(clusterOn)
		al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
		f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil, Options{Access: al, Metrics: reg})
		if got := exchangeRaw(t, f.addr, "GET / HTTP/1.1\r\nHost: a\r\n"+closeReq); !strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Fatalf("cluster metrics %v: %q", clusterOn, got)
		}
		rec := sink.JSON(t, 1)[0]
		waitFor(t, "the request recorded", func() bool {
			return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 1
		})
		pct := func(name string) *command.Percentiles {
			s := pm.NewSketch()
			if err := s.Merge(reg.Snapshot().GetProxy()[name].GetHistogram()); err != nil {
				t.Fatal(err)
			}
			return s.Percentiles()
		}
		service, total := pct(pm.ServiceTime), pct(pm.RequestTime)
		logService, _ := get(rec, "sozu.service_time").(float64)
		logResponse, _ := get(rec, "sozu.response_time").(float64)
		// Percentiles are in µs, within 1 %; the record's times in ns.
		if total.GetP_100() < uint64(wait/time.Microsecond)*98/100 || logResponse < float64(wait) {
			t.Fatalf("cluster metrics %v: request_time %d µs, record's response time %v ns: the backend's wait is missing", clusterOn, total.GetP_100(), logResponse)
		}
		if service.GetP_100() >= uint64(wait/time.Microsecond)/2 || logService >= float64(wait/2) {
			t.Errorf("cluster metrics %v: service_time %d µs, record's %v ns: want both without the backend's %v", clusterOn, service.GetP_100(), logService, wait)
		}
	}
}

// TestRequestTimeFromFirstByte: request_time and service_time start at
// the request's first byte in the metrics as in the access record
// (upstream's request_time: first byte of the request to last byte of the
// response): a head that took its client 150 ms to send counts them in
// both, and the two service times are one. The metrics started at the
// head's arrival: the record's service time held the 150 ms, the
// metric's not.
func TestRequestTimeFromFirstByte(t *testing.T) {
	const wait = 150 * time.Millisecond
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	reg := metrics.New()
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil, Options{Access: al, Metrics: reg})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\n")
	time.Sleep(wait) // the client's slow head, not a synchronisation
	io.WriteString(c, "Host: a\r\n"+closeReq)
	if got, _ := io.ReadAll(c); !strings.HasPrefix(string(got), "HTTP/1.1 200") {
		t.Fatalf("answer: %q", got)
	}
	rec := sink.JSON(t, 1)[0]
	waitFor(t, "the request recorded", func() bool {
		return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 1
	})
	pct := func(name string) uint64 {
		s := pm.NewSketch()
		if err := s.Merge(reg.Snapshot().GetProxy()[name].GetHistogram()); err != nil {
			t.Fatal(err)
		}
		return s.Percentiles().GetP_100()
	}
	// The proxy notes the first byte when it reads it, which may be a
	// little after the client wrote it (a loaded machine: 0.4 ms seen):
	// the head's wait counts, less that. Without it, these are some µs.
	floor := uint64(wait/time.Microsecond) * 90 / 100 // µs
	logService, _ := get(rec, "sozu.service_time").(float64)
	logTotal, _ := get(rec, "event.duration").(float64)
	if logService < float64(wait)*0.9 || logTotal < float64(wait)*0.9 {
		t.Fatalf("record: service time %v ns, duration %v ns: the slow head is missing", logService, logTotal)
	}
	if svc, total := pct(pm.ServiceTime), pct(pm.RequestTime); svc < floor || total < floor {
		t.Errorf("service_time %d µs, request_time %d µs: want both from the first byte, over the head's %v (the record's: %v ns, %v ns)", svc, total, wait, logService, logTotal)
	}
}
