package udp

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/logframe"
	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/metrics"
)

// jsonSink is an access log shipping over a SOCK_SEQPACKET socketpair, as
// the worker's does, and the JSON records read from its other end.
type jsonSink struct {
	mu   sync.Mutex
	recs [][]byte
}

func newJSONLog(t *testing.T) (*accesslog.Logger, *jsonSink) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "log channel")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	ship := accesslog.NewShipper(conns[0], 0, 0, "test")
	go ship.Run()
	sink := &jsonSink{}
	go func() {
		buf := make([]byte, logframe.MaxPacket)
		for {
			n, err := conns[1].Read(buf)
			if err != nil {
				return
			}
			for p := buf[:n]; len(p) > 0; {
				kind, rec, rest, err := logframe.Next(p)
				if err != nil {
					return
				}
				if kind == logframe.Access {
					sink.mu.Lock()
					sink.recs = append(sink.recs, bytes.Clone(rec))
					sink.mu.Unlock()
				}
				p = rest
			}
		}
	}()
	t.Cleanup(func() { ship.Close(); conns[0].Close(); conns[1].Close() })
	return &accesslog.Logger{Enc: accesslog.Encoder{Format: accesslog.JSON, Tag: "WRK-00"}, Ship: ship}, sink
}

func (s *jsonSink) records(t *testing.T, n int) []map[string]any {
	t.Helper()
	waitFor(t, "access records", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.recs) >= n })
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, r := range s.recs {
		var m map[string]any
		if err := json.Unmarshal(r, &m); err != nil {
			t.Fatalf("%v: %s", err, r)
		}
		out = append(out, m)
	}
	return out
}

func field(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

func count(m map[string]*command.FilteredMetrics, name string) int64 { return m[name].GetCount() }

// TestFlowAccessRecordAndMetrics: each ended flow gives one access record
// (UDP, client and backend, datagrams and bytes each way, end reason,
// tags), and the metrics count its datagrams and bytes at the proxy,
// cluster and backend levels as they go, and its live flow while it
// lives.
func TestFlowAccessRecordAndMetrics(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	cl.Responses = 3
	al, sink := newJSONLog(t)
	m := metrics.New()
	ends := make(chan FlowEnd, 10)
	_, addr := startServer(t, &Listener{Cluster: cl, Tags: accesslog.NewTags(map[string]string{"svc": "dns"})},
		Options{Access: al, Metrics: m, OnFlowEnd: func(e FlowEnd) { ends <- e }})
	c := dialClient(t, addr)
	for _, q := range []string{"q1", "q22", "q333"} {
		if r := c.ask(q, 2*time.Second); r != "a|"+q {
			t.Fatalf("%s: %q", q, r)
		}
	}
	select {
	case <-ends:
	case <-time.After(5 * time.Second):
		t.Fatal("the flow did not end after its responses")
	}
	recs := sink.records(t, 1)
	if len(recs) != 1 {
		t.Fatalf("%d records for one flow: %v", len(recs), recs)
	}
	r := recs[0]
	// Payload 2+3+4 bytes in; replies "a|" + payload out.
	want := map[string]any{
		"network.transport": "udp", "sozu.protocol": "UDP", "sozu.datagrams_in": float64(3), "sozu.datagrams_out": float64(3),
		"sozu.bytes_in": float64(9), "sozu.bytes_out": float64(15), "event.reason": "responses", "sozu.cluster_id": "c",
		"sozu.backend_id": "a", "labels.svc": "dns", "source.port": float64(c.pc.LocalAddr().(*net.UDPAddr).Port),
		"sozu.listener": addr.String(), "network.packets": float64(6), "network.bytes": float64(24),
	}
	for k, v := range want {
		if got := field(r, strings.Split(k, ".")...); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if field(r, "destination", "port") == nil || field(r, "trace", "id") == nil {
		t.Errorf("record without destination or trace id: %v", r)
	}

	wm := m.Snapshot()
	p := wm.Proxy
	for name, want := range map[string]int64{pm.UDPDatagramsIn: 3, pm.UDPDatagramsOut: 3, pm.UDPBytesIn: 9, pm.UDPBytesOut: 15, pm.UDPFlowsCreated: 1} {
		if got := count(p, name); got != want {
			t.Errorf("proxy %s = %d, want %d", name, got, want)
		}
	}
	if g := p[pm.UDPActiveFlows].GetGauge(); g != 0 {
		t.Errorf("active flows after the end: %d", g)
	}
	cm := wm.Clusters["c"]
	if cm == nil || len(cm.Backends) != 1 {
		t.Fatalf("cluster metrics %v", cm)
	}
	for _, lvl := range []map[string]*command.FilteredMetrics{cm.Cluster, cm.Backends[0].Metrics} {
		for name, want := range map[string]int64{pm.Requests: 1, pm.UDPDatagramsIn: 3, pm.UDPDatagramsOut: 3, pm.BytesIn: 9, pm.BytesOut: 15} {
			if got := count(lvl, name); got != want {
				t.Errorf("%s = %d, want %d", name, got, want)
			}
		}
	}
}

// TestActiveFlowsGauge: a live flow shows in the gauges of the three
// levels, and leaves them when it ends.
func TestActiveFlowsGauge(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	m := metrics.New()
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{Metrics: m})
	for i := range 2 {
		if r := dialClient(t, addr).ask("x", 2*time.Second); r != "a|x" {
			t.Fatalf("client %d: %q", i, r)
		}
	}
	wm := m.Snapshot()
	if p, c, b := wm.Proxy[pm.UDPActiveFlows].GetGauge(), wm.Clusters["c"].Cluster[pm.UDPActiveFlows].GetGauge(),
		wm.Clusters["c"].Backends[0].Metrics[pm.UDPActiveFlows].GetGauge(); p != 2 || c != 2 || b != 2 {
		t.Errorf("active flows: proxy %d, cluster %d, backend %d; want 2", p, c, b)
	}
	srv.Close()
	if g := m.Snapshot().Proxy[pm.UDPActiveFlows].GetGauge(); g != 0 {
		t.Errorf("active flows after Close: %d", g)
	}
}

// TestRelayAllocatesNothing: relaying a datagram of a live flow, with
// metrics on, allocates nothing (the hot path's contract).
func TestRelayAllocatesNothing(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{Metrics: metrics.New()})
	c := dialClient(t, addr)
	if r := c.ask("x", 2*time.Second); r != "a|x" {
		t.Fatalf("%q", r)
	}
	client := c.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	cfg := srv.Config()
	payload := []byte("datagram")
	scratch := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(200, func() { scratch = srv.relay(cfg, client, payload, scratch) }); n != 0 {
		t.Errorf("%v allocations per datagram", n)
	}
}
