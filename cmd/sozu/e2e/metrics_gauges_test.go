package e2e

import (
	"crypto/tls"
	"crypto/x509"
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

// The gauges of live state (client and backend connections, in-use
// backend connections, HTTP/2 streams, pooled buffers, session slots)
// come back to where they were once every connection closed, whatever
// way it ended: a 502 from a refused connect, a backend closing without
// answering, a 504, a client gone mid-request, a failed TLS handshake, an
// HTTP/2 stream reset by the client, a TCP relay cut by either side.
func TestMetricsGaugesReturnToZero(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	ca := newTestCA(t)
	cp, kp := ca.issuePEM(t, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }, nil, "a.test")
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)
	slow := make(chan struct{}, 16) // one per /slow request the origin has
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			slow <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		case "/hang":
			time.Sleep(4 * time.Second) // past back_timeout: 504
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	// A backend that accepts and closes without a word: 502.
	closer := startRawOrigin(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		c.Close()
	})
	refused := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	echo := startRawOrigin(t, tcpEcho)
	front, tlsFront, tcpFront := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`command_socket = %[1]q
worker_count = 2
worker_timeout = 10
activate_listeners = true
back_timeout = 2

[[listeners]]
protocol = "http"
address = %[2]q

[[listeners]]
protocol = "https"
address = %[3]q
certificate = %[5]q
key = %[6]q

[[listeners]]
protocol = "tcp"
address = %[4]q

[clusters.app]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "a.test" }, { address = %[3]q, hostname = "a.test" } ]
backends = [ { backend_id = "app-0", address = %[7]q } ]

[clusters.closer]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "closer.test" } ]
backends = [ { backend_id = "closer-0", address = %[8]q } ]

[clusters.refused]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "refused.test" } ]
backends = [ { backend_id = "refused-0", address = %[9]q } ]

[clusters.echo]
protocol = "tcp"
frontends = [ { address = %[4]q } ]
backends = [ { backend_id = "echo-0", address = %[10]q } ]
`, sock, front, tlsFront, tcpFront, certPath, keyPath, origin.addr, closer.addr, refused, echo.addr)
	startProxy(t, dir, sock, cfg, front, tlsFront, tcpFront)

	raw := func(req string) {
		c, err := net.DialTimeout("tcp", front, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		io.ReadAll(c)
	}
	// A plain request, and the error answers.
	raw("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	raw("GET / HTTP/1.1\r\nHost: closer.test\r\nConnection: close\r\n\r\n")
	raw("GET / HTTP/1.1\r\nHost: refused.test\r\nConnection: close\r\n\r\n")
	raw("GET / HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n")
	raw("GET /hang HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	raw("GARBAGE\r\n\r\n")
	// A client gone while the backend works, by close and by reset.
	for _, reset := range []bool{false, true} {
		c, err := net.DialTimeout("tcp", front, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n")
		originHas(t, slow) // the backend works on it
		if reset {
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
	// A client gone in the middle of a request body.
	if c, err := net.DialTimeout("tcp", front, 5*time.Second); err == nil {
		io.WriteString(c, "POST /slow HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\nabc")
		originHas(t, slow) // the backend has the head; most of the body never comes
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	// TLS: a handshake refused (garbage), one abandoned, a good one.
	raw2 := func(addr, s string) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, s)
		io.ReadAll(c)
		c.Close()
	}
	raw2(tlsFront, "GET / HTTP/1.1\r\n\r\n")
	if c, err := tls.Dial("tcp", tlsFront, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", MaxVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
		io.ReadAll(c)
		c.Close()
	} else {
		t.Fatal(err)
	}
	// HTTP/2: a stream reset by the client while the backend works, then
	// the connection closed; a normal stream.
	h := dialH2(t, tlsFront)
	h.headers(1, true, "GET", "/slow")
	h.headers(3, true, "GET", "/")
	h.expectAlive(t, 3)
	originHas(t, slow) // stream 1: reset while the backend works
	h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	h.headers(5, true, "GET", "/slow")
	originHas(t, slow) // stream 5: in flight when the connection closes
	h.close()
	// TCP: a relay cut by the client, one by reset, one echo.
	for _, reset := range []bool{false, true} {
		c, err := net.DialTimeout("tcp", tcpFront, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "x")
		b := make([]byte, 1)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.ReadFull(c, b)
		if reset {
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}

	gauges := func(am *command.AggregatedMetrics) string {
		var b strings.Builder
		p := am.GetProxying()
		for _, n := range []string{pm.ClientConnections, pm.H2ActiveStreams, pm.BufferNumber, pm.SlabEntries} {
			fmt.Fprintf(&b, "%s=%d ", n, p[n].GetGauge())
		}
		for id, cl := range am.GetClusters() {
			for _, be := range cl.GetBackends() {
				fmt.Fprintf(&b, "%s/%s=%d ", id, be.GetBackendId(), be.GetMetrics()[pm.ConnectionsPerBackend].GetGauge())
			}
		}
		return b.String()
	}
	var am *command.AggregatedMetrics
	// 3 listeners per worker.
	const slots = 3 * 2
	ok := false
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		am = queryMetrics(t, sock, nil)
		p := am.GetProxying()
		ok = p[pm.ClientConnections].GetGauge() == 0 && p[pm.H2ActiveStreams].GetGauge() == 0 &&
			p[pm.BufferNumber].GetGauge() == 0 && p[pm.SlabEntries].GetGauge() == slots
		for _, cl := range am.GetClusters() {
			for _, be := range cl.GetBackends() {
				ok = ok && be.GetMetrics()[pm.ConnectionsPerBackend].GetGauge() == 0
			}
		}
		if ok {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !ok {
		t.Errorf("gauges once every connection closed: %s", gauges(am))
	}
	t.Logf("gauges: %s", gauges(am))
	for _, n := range []string{pm.HTTPRequests, pm.HTTPErrors, pm.TLSHandshakeErrors, pm.TLSv12, pm.TLSv13, pm.TCPRequests, pm.Status5xx, pm.AnswerError(502), pm.AnswerError(503), pm.AnswerError(504), pm.AnswerError(404), pm.AnswerError(400)} {
		t.Logf("%s = %d", n, am.GetProxying()[n].GetCount())
	}
}
