package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/accesslog/accesslogtest"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/metrics"
)

// TestClockReadAfterWaits: a session reads the clock once after each wait
// and reuses that reading until the next (clock.go). Every time it takes
// must be from after the waits before it: a head sent in two parts a
// pause apart, a backend that answers a pause late, then one more request
// on the same connection, whose wait is armed from the end of the slow
// response (a reading from before it would have expired already, the
// pause being longer than the front timeout).
func TestClockReadAfterWaits(t *testing.T) {
	const pause = 400 * time.Millisecond
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(pause)
		}
		io.WriteString(w, "ok")
	})
	reg := metrics.New()
	al, sink := accesslogtest.Channel(t, accesslog.JSON, true)
	f := newFixtureWith(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.FrontTimeout, l.RequestTimeout = 3*pause/4, 10*pause
	}, Options{Access: al, Metrics: reg})

	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * pause))
	br := bufio.NewReader(c)
	roundTrip := func(parts ...string) {
		t.Helper()
		for i, p := range parts {
			if i > 0 {
				time.Sleep(pause) // the delay under test, not a synchronisation
			}
			if _, err := io.WriteString(c, p); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	sum := func(name string) time.Duration {
		return time.Duration(reg.Snapshot().GetProxy()[name].GetHistogram().GetSum())
	}

	// 1. The head in two parts: the access record's time and the request
	// time of the metrics run from its first byte.
	roundTrip("GET /fast HTTP/1.1\r\nHost: a\r\n", "\r\n")
	recs := sink.JSON(t, 1)
	// The server reads the first part a little after the client wrote it
	// and began its pause: the record may be short of the pause by that.
	if d := time.Duration(get(recs[0], "event.duration").(float64)); d < pause-50*time.Millisecond {
		t.Errorf("split head: access record duration %v, want about the pause %v", d, pause)
	}
	waitFor(t, "the first request measured", func() bool {
		return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 1
	})
	if d := sum(pm.RequestTime); d < pause-50*time.Millisecond {
		t.Errorf("split head: request time %v, want it from the first byte (about the pause %v)", d, pause)
	}

	// 2. A slow backend: its response time covers the pause; the request id
	// is of the request's millisecond.
	before := time.Now()
	roundTrip("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	after := time.Now()
	recs = sink.JSON(t, 2)
	if d := time.Duration(get(recs[1], "sozu.response_time").(float64)); d < pause {
		t.Errorf("slow backend: access record response time %v, want at least %v", d, pause)
	}
	id, err := ulid.ParseStrict(get(recs[1], "trace.id").(string))
	if err != nil {
		t.Fatal(err)
	}
	if ms := id.Time(); ms < uint64(before.UnixMilli()) || ms > uint64(after.UnixMilli()) {
		t.Errorf("request id of millisecond %d, outside the request's [%d, %d]", ms, before.UnixMilli(), after.UnixMilli())
	}

	// 3. The next request on the connection, within the front timeout of
	// the slow response's end but not of its start.
	roundTrip("GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "three requests measured", func() bool {
		return reg.Snapshot().GetProxy()[pm.HTTPRequests].GetCount() == 3
	})
	if d := sum(pm.RequestTime); d < pause {
		t.Errorf("request times add up to %v, below the slow backend's pause %v", d, pause)
	}
}

// TestClockReadAfterConnect: Connect may wait and still return a pooled
// connection (a dial to one backend timed out, then another's idle
// connection was taken). The write of the head on it is armed from after
// that wait: armed from the head's arrival, with a back timeout shorter
// than the connect timeout, it would fail at once and the pooled
// connection would be thrown away for a new dial.
func TestClockReadAfterConnect(t *testing.T) {
	a := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // a never keeps a pooled connection
		io.WriteString(w, "a")
	})
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	var slowA atomic.Bool
	var mu sync.Mutex
	var dials []string
	var d net.Dialer
	f := newFixtureBackends(t, anyHost("c"), map[string][]string{"c": {a.addr, b.addr}}, func(l *Listener) {
		l.ConnectTimeout, l.BackTimeout = 300*time.Millisecond, 200*time.Millisecond
	}, Options{}, backends.Options{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		dials = append(dials, addr)
		mu.Unlock()
		if addr == a.addr && slowA.Load() {
			<-ctx.Done() // a dial that never completes: the connect timeout ends it
			return nil, ctx.Err()
		}
		return d.DialContext(ctx, "tcp", addr)
	}})

	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	get := func() string {
		t.Helper()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(body)
	}
	for b.conns.Load() == 0 { // until b holds a pooled connection
		get()
	}
	slowA.Store(true)
	for range 16 {
		mu.Lock()
		n0 := len(dials)
		mu.Unlock()
		got := get()
		mu.Lock()
		tried := dials[n0:]
		mu.Unlock()
		if len(tried) == 0 || tried[0] != a.addr {
			continue // balanced straight to b's pooled connection
		}
		if got != "200 OK b" || len(tried) != 1 {
			t.Fatalf("after a dial to a timed out: %q, dials %v; want b's answer on its pooled connection, no other dial", got, tried)
		}
		return
	}
	t.Fatal("no request was balanced to a first")
}
