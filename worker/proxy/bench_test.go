package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/metrics"
	"github.com/sozu-go/sozu/worker/policy"
	"github.com/sozu-go/sozu/worker/router"
)

// fixedBackend answers every request head with resp, without allocating.
func fixedBackend(b testing.TB, resp []byte) string {
	return answeringBackend(b, nil, func(c net.Conn) error {
		_, err := c.Write(resp)
		return err
	})
}

// answeringBackend is an origin that calls answer for every request head
// it reads (requests have no body), on connections set up by setup (nil:
// as accepted).
func answeringBackend(b testing.TB, setup func(*net.TCPConn), answer func(net.Conn) error) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if setup != nil {
				setup(c.(*net.TCPConn))
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if err := answer(c); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkProxyKeepAlive measures one proxied GET on keep-alive
// connections at both ends, over loopback: client write, proxy parse,
// route, forward, backend answer, proxy forward, client read; with the
// worker's metrics recorded, as a worker does by default.
func BenchmarkProxyKeepAlive(b *testing.B) { benchKeepAlive(b, metrics.New()) }

// BenchmarkProxyKeepAliveNoMetrics is BenchmarkProxyKeepAlive without
// metrics (no registry), for their cost.
func BenchmarkProxyKeepAliveNoMetrics(b *testing.B) { benchKeepAlive(b, nil) }

func benchKeepAlive(b *testing.B, reg *metrics.Registry) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := fixedBackend(b, resp)
	f := newFixtureWith(b, anyHost("c"), map[string][]string{"c": {addr}}, nil, Options{Metrics: reg})
	req := []byte("GET / HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	benchRoundTrips(b, f, req, 1, nil)
}

// BenchmarkProxyFrontendFeatures is BenchmarkProxyKeepAlive through a
// frontend with basic authentication, host, port and path rewrites and
// header edits in both directions.
func BenchmarkProxyFrontendFeatures(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: x\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := fixedBackend(b, resp)
	reqEdits, respEdits, errs := policy.CompileHeaderEdits([]HeaderEdit{
		{Position: HeaderRequest, Name: "Cookie", Value: ""}, {Position: HeaderRequest, Name: "X-Tenant", Value: "t1"},
		{Position: HeaderResponse, Name: "Server", Value: ""}, {Position: HeaderResponse, Name: "X-Frame-Options", Value: "DENY"},
	}, DefaultIDHeader, true)
	if len(errs) != 0 {
		b.Fatal(errs)
	}
	host, _ := router.ParseTemplate("$HOST[1].internal", router.HostTemplate)
	path, _ := router.ParseTemplate("/v2/$PATH[1]", router.PathTemplate)
	rules := []router.Rule{{Hostname: "*.example.com", Kind: router.Prefix, Path: "/api/", Route: router.Route{ClusterID: "c",
		Policy: &Frontend{RequiredAuth: true, RewriteHost: host, RewritePath: path, RewritePort: 8080, Request: reqEdits, Response: respEdits}}}}
	d := sha256.Sum256([]byte("pw"))
	f := newFixture(b, rules, map[string][]string{"c": {addr}}, func(l *Listener) {
		l.Clusters["c"].Credentials, _ = policy.NewCredentials([]string{"bob:" + hex.EncodeToString(d[:])})
	})
	req := []byte("GET /api/users?id=1 HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nCookie: a=1\r\n" +
		"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("bob:pw")) + "\r\n\r\n")
	benchRoundTrips(b, f, req, 1, func(resp []byte) {
		if !bytes.Contains(resp, []byte("X-Frame-Options: DENY")) {
			b.Fatalf("%q", resp)
		}
	})
}

// BenchmarkProxyKeepAliveSticky is BenchmarkProxyKeepAlive on a sticky
// cluster, the client presenting its cookie among others: the cookie is
// found, removed from the forwarded head, and selects the backend.
func BenchmarkProxyKeepAliveSticky(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello world!\n")
	addr := fixedBackend(b, resp)
	other := fixedBackend(b, resp)
	f := newFixture(b, anyHost("c"), map[string][]string{"c": {addr, other}}, func(l *Listener) { l.Clusters["c"].Sticky = true })
	sets := f.reg.Update([]backends.Spec{
		{ClusterID: "c", ID: "a", Addr: netip.MustParseAddrPort(addr), Weight: 100, StickyID: "sa"},
		{ClusterID: "c", ID: "b", Addr: netip.MustParseAddrPort(other), Weight: 100, StickyID: "sb"},
	}, nil)
	next := *f.srv.Config()
	cl := *next.Clusters["c"]
	cl.Backends = sets["c"]
	next.Clusters = map[string]*Cluster{"c": &cl}
	f.srv.Swap(&next)
	req := []byte("GET / HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nCookie: theme=dark; SOZUBALANCEID=sb; lang=fr\r\n\r\n")
	benchRoundTrips(b, f, req, 1, func(resp []byte) {
		if bytes.Contains(resp, []byte("Set-Cookie")) {
			b.Fatalf("a client on its sticky backend got a new cookie: %q", resp)
		}
	})
}

// benchRoundTrips dials f and measures round trips of req on that one
// keep-alive connection, each response ending with the 13-byte body
// "hello world!\n"; check, when set, sees each response. warm round trips
// run before the timer starts. The fixture is closed at the end.
func benchRoundTrips(b *testing.B, f *fixture, req []byte, warm int, check func(resp []byte)) {
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			m, err := c.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += m
			if bytes.HasSuffix(buf[:n], []byte("hello world!\n")) {
				if check != nil {
					check(buf[:n])
				}
				return
			}
		}
	}
	for range warm {
		roundTrip()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip()
	}
	b.StopTimer()
	f.srv.Close()
	f.reg.Close()
}
