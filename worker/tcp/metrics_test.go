package tcp

import (
	"io"
	"net"
	"testing"
	"time"

	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/metrics"
)

// TestSessionBytesInMetrics: the bytes of a TCP session count in
// bytes_in and bytes_out, at the proxy level and for its cluster and
// backend, as they are relayed (a long session shows before it ends).
func TestSessionBytesInMetrics(t *testing.T) {
	o := startOrigin(t, echo)
	reg := backends.NewRegistry(backends.Options{})
	t.Cleanup(reg.Close)
	sets := reg.Update([]backends.Spec{{ClusterID: "c", ID: "c-0", Addr: o.addr, Weight: 100}}, map[string]backends.Policy{"c": {}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	srv := NewServer(ln, &Listener{Cluster: &Cluster{ID: "c", Backends: sets["c"]}}, Options{Metrics: m})
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() { srv.Close(); <-done })

	c := dial(t, ln.Addr().String())
	payload := make([]byte, 10_000)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(payload))); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	// The session is still open: its bytes count as they are relayed.
	want := int64(len(payload))
	deadline := time.Now().Add(10 * time.Second)
	for {
		wm := m.Snapshot()
		cm := wm.Clusters["c"]
		if wm.Proxy[pm.BytesIn].GetCount() == want && wm.Proxy[pm.BytesOut].GetCount() == want && cm != nil && len(cm.Backends) == 1 &&
			cm.Cluster[pm.BytesIn].GetCount() == want && cm.Cluster[pm.BytesOut].GetCount() == want &&
			cm.Backends[0].Metrics[pm.BytesIn].GetCount() == want && cm.Backends[0].Metrics[pm.BytesOut].GetCount() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bytes not counted: proxy %v, cluster %v", wm.Proxy, cm)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
