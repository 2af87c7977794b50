package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestMaxConnectionsPerIP: with a cluster cap of 3, the 4th concurrent
// connection from one IP gets 429 with Retry-After before any backend is
// contacted, a freed slot admits the next one, another cluster keeps its
// own count, and the global cap is changed at run time by the CLI. A TCP
// cluster over its cap closes the connection before dialing the backend.
func TestMaxConnectionsPerIP(t *testing.T) {
	web := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	tcpOrigin := startRawOrigin(t, func(c net.Conn) { io.Copy(c, c) })
	dir := t.TempDir()
	front := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	tcpFront := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
max_connections_per_ip = 2
retry_after = 7

[[listeners]]
protocol = "http"
address = %[2]q

[[listeners]]
protocol = "tcp"
address = %[3]q

[clusters.capped]
protocol = "http"
max_connections_per_ip = 3
retry_after = 5
frontends = [ { address = %[2]q, hostname = "capped.test" } ]
backends = [ { address = %[4]q } ]

[clusters.global]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "global.test" } ]
backends = [ { address = %[4]q } ]

[clusters.open]
protocol = "http"
max_connections_per_ip = 0
frontends = [ { address = %[2]q, hostname = "open.test" } ]
backends = [ { address = %[4]q } ]

[clusters.pipe]
protocol = "tcp"
max_connections_per_ip = 1
frontends = [ { address = %[3]q } ]
backends = [ { address = %[5]q } ]
`, sock, front, tcpFront, web.addr, tcpOrigin.addr)
	p := startProxy(t, dir, sock, cfg, front, tcpFront)

	type conn struct {
		net.Conn
		br *bufio.Reader
	}
	open := func() *conn {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &conn{c, bufio.NewReader(c)}
	}
	get := func(c *conn, host string) *http.Response {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", host, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	// Cluster cap 3: three keep-alive connections hold their slots.
	var held []*conn
	for i := range 3 {
		c := open()
		if r := get(c, "capped.test"); r.StatusCode != 200 {
			t.Fatalf("connection %d: %d", i, r.StatusCode)
		}
		held = append(held, c)
	}
	before := web.conns.Load()
	fourth := open()
	r := get(fourth, "capped.test")
	if r.StatusCode != 429 || r.Header.Get("Retry-After") != "5" {
		t.Fatalf("4th connection: %d, Retry-After %q; want 429 with the cluster's 5", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if web.conns.Load() != before {
		t.Fatal("the refused connection reached the backend")
	}
	// The refused connection is closed; a freed slot admits the next.
	held[0].Close()
	sozutest.WaitFor(t, 10*time.Second, "a freed slot admits a new connection", func() bool {
		return get(open(), "capped.test").StatusCode == 200
	})
	// The same connections count nothing against another cluster: the
	// global cap (2) applies there, with the global Retry-After.
	g1, g2, g3 := open(), open(), open()
	if get(g1, "global.test").StatusCode != 200 || get(g2, "global.test").StatusCode != 200 {
		t.Fatal("global cap refused its first two connections")
	}
	if r := get(g3, "global.test"); r.StatusCode != 429 || r.Header.Get("Retry-After") != "7" {
		t.Fatalf("3rd global connection: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// max_connections_per_ip = 0 on a cluster: unlimited there.
	for range 4 {
		if r := get(open(), "open.test"); r.StatusCode != 200 {
			t.Fatalf("uncapped cluster: %d", r.StatusCode)
		}
	}
	// The CLI changes the global cap at run time.
	if out := p.MustCLI("connection-limit", "show"); !strings.Contains(out, "max connections per IP: 2 ") {
		t.Fatalf("connection-limit show: %q", out)
	}
	p.MustCLI("connection-limit", "set", "--limit", "3")
	if out := p.MustCLI("connection-limit", "show"); !strings.Contains(out, "max connections per IP: 3 ") {
		t.Fatalf("after set: %q", out)
	}
	if r := get(open(), "global.test"); r.StatusCode != 200 {
		t.Fatalf("3rd global connection after raising the cap: %d", r.StatusCode)
	}
	p.MustCLI("connection-limit", "remove")
	if out := p.MustCLI("connection-limit", "show"); !strings.Contains(out, "unlimited") {
		t.Fatalf("after remove: %q", out)
	}

	// TCP: the second connection is closed before the backend is dialed.
	c1, err := net.Dial("tcp", tcpFront)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c1.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c1, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c1, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("first TCP connection: %q %v", buf, err)
	}
	dialed := tcpOrigin.conns.Load()
	c2, err := net.Dial("tcp", tcpFront)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c2.Read(buf); err != io.EOF || n != 0 {
		t.Fatalf("second TCP connection: read %d, %v; want EOF", n, err)
	}
	if tcpOrigin.conns.Load() != dialed {
		t.Fatal("the refused TCP connection reached the backend")
	}
}
