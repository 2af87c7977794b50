package e2e

import (
	"bufio"
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
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// TestIdleConnectionsHoldNoBuffersMetrics holds 2 000 keep-alive client
// connections on a real two-worker proxy, each idle after one proxied
// request (plain HTTP/1.1, HTTP/1.1 over TLS, HTTP/2), and reads the
// workers' own count of pooled buffers checked out (`buffer.number`, as
// `sozu metrics get` shows it): 0 while they wait, with every connection
// counted open. Then every connection still serves a request.
func TestIdleConnectionsHoldNoBuffersMetrics(t *testing.T) {
	const nPlain, nTLS, nH2 = 1700, 150, 150
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	ca := newTestCA(t)
	cp, kp := ca.issuePEM(t, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }, nil, "a.test")
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	front, tlsFront := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`command_socket = %[1]q
worker_count = 2
activate_listeners = true

[[listeners]]
protocol = "http"
address = %[2]q

[[listeners]]
protocol = "https"
address = %[3]q
certificate = %[4]q
key = %[5]q

[clusters.app]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "a.test" }, { address = %[3]q, hostname = "a.test" } ]
backends = [ { backend_id = "app-0", address = %[6]q } ]
`, sock, front, tlsFront, certPath, keyPath, origin.addr)
	startProxy(t, dir, sock, cfg, front, tlsFront)

	type h1conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	var h1s []h1conn
	var h2s []*h2raw
	t.Cleanup(func() {
		for _, c := range h1s {
			c.c.Close()
		}
		for _, h := range h2s {
			h.close()
		}
	})
	get := func(c h1conn, path string) {
		t.Helper()
		c.c.SetDeadline(time.Now().Add(15 * time.Second))
		fmt.Fprintf(c.c, "GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n", path)
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "ok "+path {
			t.Fatalf("GET %s: %d %q %v", path, resp.StatusCode, body, err)
		}
	}
	for i := range nPlain + nTLS {
		var c net.Conn
		var err error
		if i < nPlain {
			c, err = net.DialTimeout("tcp", front, 5*time.Second)
		} else {
			c, err = tls.Dial("tcp", tlsFront, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"http/1.1"}})
		}
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		h1s = append(h1s, h1conn{c, bufio.NewReader(c)})
		get(h1s[i], "/first")
	}
	for range nH2 {
		h := dialH2(t, tlsFront)
		h2s = append(h2s, h)
		h2Get(t, h, 1, "/first")
	}

	const total = nPlain + nTLS + nH2
	var conns, bufs uint64
	sozutest.WaitFor(t, 20*time.Second, fmt.Sprintf("%s = %d and %s = 0 with the connections idle", pm.ClientConnections, total, pm.BufferNumber),
		func() bool {
			p := queryMetrics(t, sock, nil).GetProxying()
			c, b := p[pm.ClientConnections].GetGauge(), p[pm.BufferNumber].GetGauge()
			if c != conns || b != bufs {
				conns, bufs = c, b
				t.Logf("%s = %d, %s = %d", pm.ClientConnections, c, pm.BufferNumber, b)
			}
			return c == total && b == 0
		})

	// Still usable, every one.
	for _, c := range h1s {
		get(c, "/second")
	}
	for _, h := range h2s {
		h2Get(t, h, 3, "/second")
	}
}

// h2Get sends GET path on stream id of h and reads its response to the
// end: status 200 and body "ok " + path.
func h2Get(t *testing.T, h *h2raw, id uint32, path string) {
	t.Helper()
	if h.fr.ReadMetaHeaders == nil { // one decoder for the connection's life
		h.fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	}
	h.c.SetDeadline(time.Now().Add(15 * time.Second))
	h.headers(id, true, "GET", path)
	var body strings.Builder
	status := ""
	for {
		f, err := h.next(t)
		if err != nil {
			t.Fatalf("stream %d %s: %v", id, path, err)
		}
		if f.Header().StreamID != id {
			if g, ok := f.(*http2.GoAwayFrame); ok {
				t.Fatalf("stream %d %s: GOAWAY %v", id, path, g.ErrCode)
			}
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status")
		case *http2.DataFrame:
			body.Write(f.Data())
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d %s: reset %v", id, path, f.ErrCode)
		}
		if f.Header().Flags.Has(http2.FlagDataEndStream) {
			break
		}
	}
	if status != "200" || body.String() != "ok "+path {
		t.Fatalf("stream %d %s: %s %q", id, path, status, body.String())
	}
}
