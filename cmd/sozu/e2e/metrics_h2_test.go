package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// startH2MetricsProxy starts 2 workers with an HTTPS listener routing
// a.test to an origin whose /slow answers after 3 s (or when the request
// is cancelled), and JSON access records in dir/access.log; it returns
// the listener's address, the command socket, dir, and a channel that
// receives once per /slow request the origin has.
func startH2MetricsProxy(t *testing.T) (addr, sock, dir string, slow <-chan struct{}) {
	t.Helper()
	dir = t.TempDir()
	sock = filepath.Join(dir, "sozu.sock")
	ca := newTestCA(t)
	cp, kp := ca.issuePEM(t, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }, nil, "a.test")
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)
	got := make(chan struct{}, 16)
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			got <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}
		io.WriteString(w, "ok")
	}))
	addr = freeAddr(t)
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true
access_logs_target = "file://%[6]s/access.log"
access_logs_format = "json"

[[listeners]]
protocol = "https"
address = %[2]q
certificate = %[3]q
key = %[4]q

[clusters.app]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "a.test" } ]
backends = [ { backend_id = "app-0", address = %[5]q } ]
`, sock, addr, certPath, keyPath, origin.addr, dir)
	startProxy(t, dir, sock, cfg, addr)
	return addr, sock, dir, got
}

// A client that resets its HTTP/2 stream (RST_STREAM CANCEL), or closes
// its connection, while the backend works got no answer: upstream counts
// no 5xx for it (the proxy did not fail, the client left). Only the
// stream answered counts, a 2xx; the access records say the same: no
// status for the streams that got none.
func TestMetricsH2ClientCancelIsNoError(t *testing.T) {
	addr, sock, dir, slow := startH2MetricsProxy(t)
	h := dialH2(t, addr)
	h.headers(1, true, "GET", "/slow")
	h.headers(3, true, "GET", "/")
	h.expectAlive(t, 3)
	originHas(t, slow) // stream 1
	h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	h.headers(5, true, "GET", "/slow")
	originHas(t, slow) // stream 5
	h.close()

	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 15*time.Second, "every stream ends", func() bool {
		am = queryMetrics(t, sock, nil)
		// A session records its request before its connection's gauge
		// goes down: once they are 0, every record is in.
		return am.GetProxying()[pm.H2ActiveStreams].GetGauge() == 0 && am.GetProxying()[pm.ClientConnections].GetGauge() == 0
	})
	p := am.GetProxying()
	for name, want := range map[string]int64{pm.HTTPRequests: 1, pm.Status2xx: 1, pm.Status5xx: 0, pm.HTTPErrors: 0, pm.AnswerError(502): 0} {
		if got := p[name].GetCount(); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if got := am.GetClusters()["app"].GetCluster()[pm.Status5xx].GetCount(); got != 0 {
		t.Errorf("cluster %s = %d, want 0", pm.Status5xx, got)
	}
	recs := accessRecords(t, filepath.Join(dir, "access.log"), 3)
	statuses := map[string][]any{}
	reasons := map[any]int{}
	for _, r := range recs {
		p, _ := ecs(r, "url.path").(string)
		statuses[p] = append(statuses[p], ecs(r, "http.response.status_code"))
		if p == "/slow" {
			reasons[ecs(r, "event.reason")]++
		}
	}
	// Stream 1, which the client reset, says so; stream 5 ended with the
	// connection (no reason: the connection may also end by our doing).
	if reasons["client reset its stream before the end of the response"] != 1 || reasons[nil] != 1 {
		t.Errorf("event.reason of the cancelled /slow streams: %v, want one reset by the client and one without a reason", reasons)
	}
	if got := statuses["/"]; len(got) != 1 || got[0] != float64(200) {
		t.Errorf("access record of /: statuses %v, want [200]", got)
	}
	if got := statuses["/slow"]; len(got) != 2 || got[0] != nil || got[1] != nil {
		t.Errorf("access records of the cancelled /slow streams: statuses %v, want none", got)
	}
}

// originHas waits for the origin to have one more /slow request.
func originHas(t *testing.T, slow <-chan struct{}) {
	t.Helper()
	select {
	case <-slow:
	case <-time.After(10 * time.Second):
		t.Fatal("the origin never got the /slow request")
	}
}

// accessRecords waits for n JSON access records in path and decodes them.
func accessRecords(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sozutest.WaitFor(t, 10*time.Second, fmt.Sprintf("%d access records in %s", n, path), func() bool {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 || len(lines) < n {
			return false
		}
		recs = recs[:0]
		for _, l := range lines {
			var r map[string]any
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("access record %q: %v", l, err)
			}
			recs = append(recs, r)
		}
		return true
	})
	return recs
}

// bytes_out of an HTTP/2 stream counts its response head (in its HTTP/1.1
// form, docs/metrics.md), not only its body: the same response counts
// the same over HTTP/1.1 (keep-alive) and HTTP/2, at the proxy level and
// for the cluster and backend, and in the access record.
func TestMetricsH2BytesOutCountsHead(t *testing.T) {
	addr, sock, dir, _ := startH2MetricsProxy(t)
	before := queryMetrics(t, sock, nil)
	h := dialH2(t, addr)
	h.headers(1, true, "GET", "/")
	h.expectAlive(t, 1)
	h.close()
	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the stream is recorded", func() bool {
		am = queryMetrics(t, sock, nil)
		return am.GetProxying()[pm.HTTPRequests].GetCount() == 1
	})
	out := am.GetProxying()[pm.BytesOut].GetCount() - before.GetProxying()[pm.BytesOut].GetCount()
	// "HTTP/1.1 200 OK\r\n", Content-Length, Content-Type, Date, Sozu-Id
	// and the body "ok": well over 100 bytes; the body alone is 2.
	if out < 100 {
		t.Errorf("bytes_out of an HTTP/2 stream answered 200 \"ok\": %d, want its head counted too", out)
	}
	cl := am.GetClusters()["app"]
	if got := cl.GetCluster()[pm.BytesOut].GetCount(); got != out {
		t.Errorf("cluster bytes_out %d, proxy %d", got, out)
	}
	if b := cl.GetBackends(); len(b) != 1 || b[0].GetMetrics()[pm.BytesOut].GetCount() != out {
		t.Errorf("backend bytes_out: %v, proxy %d", b, out)
	}
	rec := accessRecords(t, filepath.Join(dir, "access.log"), 1)[0]
	if got := ecs(rec, "http.response.bytes"); got != float64(out) {
		t.Errorf("access record: http.response.bytes %v, bytes_out %d", got, out)
	}
}

// Upstream's listener.accepted.<protocol> and http.alpn.* counters: every
// connection of an HTTPS listener counts in listener.accepted.https (none
// in .http or .tcp); a TLS connection that negotiated h2 in http.alpn.h2,
// one that negotiated http/1.1 or no protocol in http.alpn.http11.
func TestMetricsAcceptedByListenerAndALPN(t *testing.T) {
	addr, sock, _, _ := startH2MetricsProxy(t)
	h := dialH2(t, addr)
	h.headers(1, true, "GET", "/")
	h.expectAlive(t, 1)
	h.close()
	for _, protos := range [][]string{{"http/1.1"}, nil} {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: protos})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	var p map[string]*command.FilteredMetrics
	sozutest.WaitFor(t, 10*time.Second, "three handshakes counted", func() bool {
		p = queryMetrics(t, sock, nil).GetProxying()
		return p[pm.H2Connections].GetCount()+p[pm.ALPNHTTP11].GetCount() >= 3
	})
	if h2, h11 := p[pm.H2Connections].GetCount(), p[pm.ALPNHTTP11].GetCount(); h2 != 1 || h11 != 2 {
		t.Errorf("http.alpn.h2 %d, http.alpn.http11 %d; want 1 and 2", h2, h11)
	}
	total := p[pm.AcceptedConnections].GetCount()
	if https := p[pm.AcceptedHTTPS].GetCount(); total < 3 || https != total || p[pm.AcceptedHTTP].GetCount() != 0 || p[pm.AcceptedTCP].GetCount() != 0 {
		t.Errorf("listener.accepted.total %d, .https %d, .http %d, .tcp %d; want .https the total (>= 3), the others 0",
			total, https, p[pm.AcceptedHTTP].GetCount(), p[pm.AcceptedTCP].GetCount())
	}
}
