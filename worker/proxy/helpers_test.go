package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/router"
)

// fixture is a proxy Server on a loopback listener.
type fixture struct {
	t    testing.TB
	srv  *Server
	addr string
	reg  *backends.Registry
	evMu sync.Mutex
	evs  []*command.Event
}

func (f *fixture) events() []string {
	f.evMu.Lock()
	defer f.evMu.Unlock()
	var out []string
	for _, e := range f.evs {
		out = append(out, e.GetKind().String())
	}
	return out
}

// newFixture starts a proxy whose listener routes rules to clusters, each
// cluster's backends at the given addresses. setup may adjust the listener.
func newFixture(t testing.TB, rules []router.Rule, clusters map[string][]string, setup func(*Listener)) *fixture {
	t.Helper()
	return newFixtureWith(t, rules, clusters, setup, Options{})
}

// newFixtureWith is newFixture with the server's options.
func newFixtureWith(t testing.TB, rules []router.Rule, clusters map[string][]string, setup func(*Listener), opt Options) *fixture {
	t.Helper()
	return newFixtureBackends(t, rules, clusters, setup, opt, backends.Options{})
}

// newFixtureBackends is newFixtureWith with the backend registry's options
// (its OnEvent is the fixture's).
func newFixtureBackends(t testing.TB, rules []router.Rule, clusters map[string][]string, setup func(*Listener), opt Options, bopt backends.Options) *fixture {
	t.Helper()
	f := &fixture{t: t}
	bopt.OnEvent = func(e *command.Event) {
		f.evMu.Lock()
		f.evs = append(f.evs, e)
		f.evMu.Unlock()
	}
	f.reg = backends.NewRegistry(bopt)
	var specs []backends.Spec
	for id, addrs := range clusters {
		for i, a := range addrs {
			specs = append(specs, backends.Spec{ClusterID: id, ID: id + "-" + string(rune('a'+i)), Addr: netip.MustParseAddrPort(a), Weight: 100})
		}
	}
	sets := f.reg.Update(specs, nil)
	cls := map[string]*Cluster{}
	for id := range clusters {
		cls[id] = &Cluster{ID: id, Backends: sets[id]}
	}
	tab, err := router.Build(rules)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Listener{Addr: netip.MustParseAddrPort(ln.Addr().String()), Routes: tab, Clusters: cls}
	if setup != nil {
		setup(cfg)
	}
	f.srv = NewServer(ln, cfg, opt)
	f.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve() }()
	t.Cleanup(func() {
		f.srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		f.reg.Close()
		if n := f.srv.Panics.Load(); n != 0 {
			t.Errorf("%d panics", n)
		}
	})
	return f
}

// anyHost routes every request to cluster "c".
func anyHost(cluster string) []router.Rule {
	return []router.Rule{{Hostname: "*", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: cluster}}}
}

// httpBackend is a net/http origin counting the connections it accepts.
type httpBackend struct {
	addr  string
	conns atomic.Int64
	srv   *http.Server
}

func newHTTPBackend(t *testing.T, h http.HandlerFunc) *httpBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &httpBackend{addr: ln.Addr().String()}
	b.srv = &http.Server{Handler: h, ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// rawBackend runs handle on each accepted connection and counts the bytes
// handle reads through the connection it is given.
type rawBackend struct {
	addr  string
	conns atomic.Int64
	bytes atomic.Int64
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func newRawBackend(t *testing.T, handle func(c net.Conn)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(countingConn{c, &b.bytes})
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return b
}

// readHeadFrom reads a request head (up to the empty line) from r.
func readHeadFrom(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := r.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" {
			return sb.String(), nil
		}
	}
}

// exchangeRaw sends raw bytes to the proxy and returns everything it sends
// back until it closes the connection (or 5 s pass).
func exchangeRaw(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// client returns an HTTP client for the proxy with keep-alive.
func client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// wsEchoBackend is a backend that upgrades a WebSocket request (400 to
// any other), sends greeting after its 101, and echoes what it reads.
func wsEchoBackend(t *testing.T, greeting string) *rawBackend {
	return newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, _ := readHeadFrom(br)
		if !strings.Contains(head, "Upgrade: websocket\r\n") || !strings.Contains(head, "Connection: upgrade\r\n") {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"+greeting)
		io.Copy(c, br) // echo
	})
}

// openWebSocket connects to addr and upgrades to a WebSocket, first sent
// right after the request; it returns the connection (deadline 10 s) and
// its reader past the 101.
func openWebSocket(t *testing.T, addr, first string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"+first)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return c, br
}
