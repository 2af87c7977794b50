package proxy

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/proxyproto"
	"github.com/sozu-go/sozu/worker/router"
)

// testTLSConfig is a server config with one self-signed certificate for names.
func testTLSConfig(t testing.TB, names ...string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// tlsExchange sends raw over TLS (with SNI sni, none when empty) after the
// optional prefix written in clear, and returns what the proxy sends back
// until it closes the connection.
func tlsExchange(t *testing.T, addr, prefix, sni, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if prefix != "" {
		if _, err := io.WriteString(c, prefix); err != nil {
			t.Fatal(err)
		}
	}
	tc := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if _, err := io.WriteString(tc, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tc)
	return string(b)
}

// echoBackend answers 200 with the request's X-Forwarded-For and Forwarded
// as its body; ?sts=v makes it send its own Strict-Transport-Security v.
func echoBackend(t *testing.T) *httpBackend {
	return newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("sts"); v != "" {
			w.Header().Set("Strict-Transport-Security", v)
		}
		io.WriteString(w, "xff="+r.Header.Get("X-Forwarded-For")+" fwd="+r.Header.Get("Forwarded"))
	})
}

func statusOf(resp string) string {
	line, _, _ := strings.Cut(resp, "\r\n")
	return line
}

// fieldsOf returns the values of the field name in the head of resp.
func fieldsOf(t *testing.T, resp, name string) []string {
	t.Helper()
	r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
	if err != nil {
		t.Fatalf("response %q: %v", resp, err)
	}
	r.Body.Close()
	return r.Header.Values(name)
}

const closeReq = "Connection: close\r\n\r\n"

func TestStrictSNIBinding(t *testing.T) {
	b := echoBackend(t)
	conf := testTLSConfig(t, "a.test", "b.test")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.TLS, l.StrictSNI = conf, true
		// What the default certificate (served without SNI) covers.
		l.DefaultNames = []string{"a.test", "*.w.test", "127.0.0.1", "::1"}
	})
	for _, tt := range []struct {
		name, sni, host, want string
	}{
		{"other host", "a.test", "b.test", "HTTP/1.1 421 Misdirected Request"},
		{"other host with port", "a.test", "b.test:443", "HTTP/1.1 421 Misdirected Request"},
		{"same host", "a.test", "a.test", "HTTP/1.1 200 OK"},
		{"case and port ignored", "a.test", "A.Test:8443", "HTTP/1.1 200 OK"},
		{"trailing dot", "a.test", "a.test.", "HTTP/1.1 200 OK"},
		// Without SNI: bound to the default certificate's names.
		{"no SNI, other host", "", "other.test", "HTTP/1.1 421 Misdirected Request"},
		{"no SNI, host of the default certificate", "", "A.test:8443", "HTTP/1.1 200 OK"},
		{"no SNI, host under its wildcard", "", "x.w.test", "HTTP/1.1 200 OK"},
		{"no SNI, two labels under its wildcard", "", "y.x.w.test", "HTTP/1.1 421 Misdirected Request"},
		{"no SNI, the wildcard's parent", "", "w.test", "HTTP/1.1 421 Misdirected Request"},
		{"no SNI, its IP address", "", "127.0.0.1:8443", "HTTP/1.1 200 OK"},
		{"no SNI, its IPv6 address", "", "[::1]:8443", "HTTP/1.1 200 OK"},
		{"no SNI, another IP address", "", "10.0.0.1", "HTTP/1.1 421 Misdirected Request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A keep-alive request: a 421 must close the connection itself.
			got := tlsExchange(t, f.addr, "", tt.sni, "GET / HTTP/1.1\r\nHost: "+tt.host+"\r\n\r\n"+
				"GET / HTTP/1.1\r\nHost: "+tt.host+"\r\n"+closeReq)
			if statusOf(got) != tt.want {
				t.Fatalf("got %q, want %s", got, tt.want)
			}
			if n := strings.Count(got, "HTTP/1.1 "); tt.want != "HTTP/1.1 200 OK" && n != 1 {
				t.Fatalf("%d responses after a 421: %q", n, got)
			}
		})
	}

	// Binding off: a mismatch is served.
	cfg := *f.srv.Config()
	cfg.StrictSNI = false
	f.srv.Swap(&cfg)
	if got := tlsExchange(t, f.addr, "", "a.test", "GET / HTTP/1.1\r\nHost: b.test\r\n"+closeReq); statusOf(got) != "HTTP/1.1 200 OK" {
		t.Fatalf("binding off: %q", got)
	}
}

func TestStrictSNIPlainHTTP(t *testing.T) {
	// Plain HTTP: no binding at all, even when StrictSNI is set.
	b := echoBackend(t)
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.StrictSNI = true })
	if got := exchangeRaw(t, f.addr, "GET / HTTP/1.1\r\nHost: b.test\r\n"+closeReq); statusOf(got) != "HTTP/1.1 200 OK" {
		t.Fatalf("plain HTTP: %q", got)
	}
}

func TestHSTS(t *testing.T) {
	b := echoBackend(t)
	conf := testTLSConfig(t, "a.test")
	rules := []router.Rule{
		{Hostname: "a.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Key: "listener-policy"}},
		{Hostname: "off.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Key: "off"}},
		{Hostname: "own.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Key: "own"}},
		{Hostname: "force.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Key: "force"}},
	}
	age := uint32(600)
	setup := func(l *Listener) {
		l.HSTS = NewHSTS(true, nil, true, false, false)
		l.FrontendHSTS = map[string]*HSTS{
			"off":   {}, // disabled on this frontend
			"own":   NewHSTS(true, &age, false, true, false),
			"force": NewHSTS(true, &age, false, false, true),
		}
	}
	tf := newFixture(t, rules, map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf; setup(l) })
	pf := newFixture(t, rules, map[string][]string{"c": {b.addr}}, setup) // plain HTTP: never sent

	for _, tt := range []struct {
		name, host, path string
		tls              bool
		want             []string
	}{
		{"listener policy, default max-age", "a.test", "/", true, []string{"max-age=31536000; includeSubDomains"}},
		{"backend's own kept", "a.test", "/?sts=max-age%3D5", true, []string{"max-age=5"}},
		{"frontend disables", "off.test", "/", true, nil},
		{"frontend overrides", "own.test", "/", true, []string{"max-age=600; preload"}},
		{"frontend override keeps the backend's", "own.test", "/?sts=max-age%3D5", true, []string{"max-age=5"}},
		{"force replaces the backend's", "force.test", "/?sts=max-age%3D5", true, []string{"max-age=600"}},
		{"plain HTTP", "a.test", "/", false, nil},
		{"plain HTTP with force", "force.test", "/", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := "GET " + tt.path + " HTTP/1.1\r\nHost: " + tt.host + "\r\n" + closeReq
			var got string
			if tt.tls {
				got = tlsExchange(t, tf.addr, "", "", raw)
			} else {
				got = exchangeRaw(t, pf.addr, raw)
			}
			if statusOf(got) != "HTTP/1.1 200 OK" {
				t.Fatalf("got %q", got)
			}
			if v := fieldsOf(t, got, "Strict-Transport-Security"); strings.Join(v, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("Strict-Transport-Security %q, want %q", v, tt.want)
			}
		})
	}
}

func TestNewHSTS(t *testing.T) {
	zero := uint32(0)
	if h := NewHSTS(false, nil, true, true, true); h != nil {
		t.Fatalf("disabled: %+v", h)
	}
	if h := NewHSTS(true, &zero, false, false, false); h.Value != "max-age=0" {
		t.Fatalf("max_age 0: %q", h.Value)
	}
	if h := NewHSTS(true, nil, true, true, false); h.Value != "max-age=31536000; includeSubDomains; preload" {
		t.Fatalf("all: %q", h.Value)
	}
}

func TestHTTPSRedirect(t *testing.T) {
	b := echoBackend(t)
	for _, tt := range []struct {
		name string
		port uint16
		head string
		want string
	}{
		{"default port", 0, "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: shop.test:8080\r\n", "https://shop.test/a/b?x=1&y=2"},
		{"port 443 left out", 443, "GET / HTTP/1.1\r\nHost: shop.test\r\n", "https://shop.test/"},
		{"explicit port", 8443, "GET /p?q HTTP/1.1\r\nHost: Shop.Test:8080\r\n", "https://Shop.Test:8443/p?q"},
		{"IPv6 host", 8443, "GET /p HTTP/1.1\r\nHost: [::1]:8080\r\n", "https://[::1]:8443/p"},
		{"absolute form", 0, "GET http://shop.test/abs?z HTTP/1.1\r\nHost: shop.test\r\n", "https://shop.test/abs?z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
				l.Clusters["c"].HTTPSRedirect, l.Clusters["c"].HTTPSRedirectPort = true, tt.port
			})
			got := exchangeRaw(t, f.addr, tt.head+"\r\n")
			if statusOf(got) != "HTTP/1.1 301 Moved Permanently" {
				t.Fatalf("got %q", got)
			}
			if loc := fieldsOf(t, got, "Location"); len(loc) != 1 || loc[0] != tt.want {
				t.Fatalf("Location %q, want %q", loc, tt.want)
			}
			if b.conns.Load() != 0 {
				t.Fatalf("the backend was reached")
			}
		})
	}

	// Over HTTPS the cluster is served.
	conf := testTLSConfig(t, "shop.test")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.TLS = conf
		l.Clusters["c"].HTTPSRedirect = true
	})
	if got := tlsExchange(t, f.addr, "", "shop.test", "GET / HTTP/1.1\r\nHost: shop.test\r\n"+closeReq); statusOf(got) != "HTTP/1.1 200 OK" {
		t.Fatalf("over HTTPS: %q", got)
	}
}

func TestExpectProxy(t *testing.T) {
	b := echoBackend(t)
	src := netip.MustParseAddrPort("192.0.2.7:5555")
	src6 := netip.MustParseAddrPort("[2001:db8::7]:5555")
	dst := netip.MustParseAddrPort("198.51.100.1:80")
	dst6 := netip.MustParseAddrPort("[2001:db8::1]:80")
	hdr := string(proxyproto.Append(nil, src, dst))
	req := "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 10.9.9.9\r\n" + closeReq

	pf := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.ExpectProxy = true })
	conf := testTLSConfig(t, "a.test")
	tf := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.ExpectProxy, l.TLS, l.StrictSNI = true, conf, true
	})

	check := func(t *testing.T, got, wantBody string) {
		t.Helper()
		if statusOf(got) != "HTTP/1.1 200 OK" || !strings.Contains(got, wantBody) {
			t.Fatalf("got %q, want body %q", got, wantBody)
		}
	}
	t.Run("http", func(t *testing.T) {
		check(t, exchangeRaw(t, pf.addr, hdr+req), `xff=10.9.9.9, 192.0.2.7 fwd=proto=http;for=192.0.2.7;by=`)
	})
	t.Run("http ipv6", func(t *testing.T) {
		got := exchangeRaw(t, pf.addr, string(proxyproto.Append(nil, src6, dst6))+req)
		if !strings.Contains(got, `xff=10.9.9.9, 2001:db8::7 fwd=proto=http;for="[2001:db8::7]";by=`) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("local keeps the connection's address", func(t *testing.T) {
		check(t, exchangeRaw(t, pf.addr, string(proxyproto.AppendLocal(nil))+req), "xff=10.9.9.9, 127.0.0.1 fwd=proto=http;for=127.0.0.1;by=\"127.0.0.1:"+strings.Split(pf.addr, ":")[1]+"\"")
	})
	t.Run("https", func(t *testing.T) {
		got := tlsExchange(t, tf.addr, hdr, "a.test", req)
		if !strings.Contains(got, "xff=10.9.9.9, 192.0.2.7 fwd=proto=https;for=192.0.2.7;by=") {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("missing header closes", func(t *testing.T) {
		if got := exchangeRaw(t, pf.addr, req); got != "" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("header cut short times out", func(t *testing.T) {
		cfg := *pf.srv.Config()
		cfg.FrontTimeout = 200 * time.Millisecond
		pf.srv.Swap(&cfg)
		start := time.Now()
		if got := exchangeRaw(t, pf.addr, hdr[:10]); got != "" {
			t.Fatalf("got %q", got)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
}
