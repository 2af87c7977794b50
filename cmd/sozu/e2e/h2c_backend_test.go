package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// h2cOrigin is a Go HTTP/2 server spoken to with prior knowledge (the
// backend of a cluster with http2 = true). It counts the connections it
// accepts, and serves each with its own http.Server so that goAway can
// make it send a graceful GOAWAY on every connection accepted so far.
type h2cOrigin struct {
	addr     string
	accepted atomic.Int64
	mu       sync.Mutex
	servers  []*http.Server
	conns    []net.Conn
}

func startH2COrigin(t *testing.T, h http.Handler, maxStreams uint32) *h2cOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &h2cOrigin{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.accepted.Add(1)
			hs := &http.Server{Handler: h}
			h2s := &http2.Server{MaxConcurrentStreams: maxStreams}
			http2.ConfigureServer(hs, h2s)
			o.mu.Lock()
			o.servers = append(o.servers, hs)
			o.conns = append(o.conns, c)
			o.mu.Unlock()
			go h2s.ServeConn(c, &http2.ServeConnOpts{Handler: h, BaseConfig: hs})
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, c := range o.conns {
			c.Close()
		}
	})
	return o
}

// goAway sends a graceful GOAWAY on every connection accepted so far.
func (o *h2cOrigin) goAway() {
	o.mu.Lock()
	hs := o.servers
	o.servers = nil
	o.mu.Unlock()
	for _, s := range hs {
		s.Shutdown(context.Background())
	}
}

// TestH2CBackend runs sozu with a cluster whose backend speaks HTTP/2
// with prior knowledge (http2 = true), reached from HTTP/2 clients (TLS,
// ALPN h2: Go's client, curl --http2, nghttp, h2load) and HTTP/1.1 ones:
// many concurrent requests share at most 4 backend connections with bodies
// exact both ways; a backend RST_STREAM fails only its request; a stalled
// backend stream or a client that stops reading holds no other request;
// graceful GOAWAYs from the backend mid-load cost no client an error.
func TestH2CBackend(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	os.WriteFile(caPath, ca.pem, 0o600)
	cp, kp := ca.issuePEM(t, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }, nil, "a.test")
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)

	var inGate atomic.Int64
	gate := make(chan struct{})
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	origin := startH2COrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gate":
			inGate.Add(1)
			<-gate
		case "/reset":
			panic(http.ErrAbortHandler) // RST_STREAM before any response
		case "/reset-mid":
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/stall":
			w.WriteHeader(200)
			io.WriteString(w, "stalled")
			w.(http.Flusher).Flush()
			<-stall
			return
		case "/big":
			w.Write(big)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("X-Sum", hex.EncodeToString(sum[:]))
		w.Header().Set("X-Proto", r.Proto)
		if len(body)%2 == 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		} else {
			w.(http.Flusher).Flush() // no content-length: chunked to HTTP/1.1 clients
		}
		w.Write(body)
	}), 60)

	httpsPort, httpPort := sozutest.FreePort(t), sozutest.FreePort(t)
	httpsAddr, httpAddr := fmt.Sprintf("127.0.0.1:%d", httpsPort), fmt.Sprintf("127.0.0.1:%d", httpPort)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "https"
address = %q
certificate = %q
key = %q

[[listeners]]
protocol = "http"
address = %q

[clusters.app]
protocol = "http"
http2 = true
backends = [ { address = %q } ]
frontends = [ { address = %[2]q, hostname = "*" }, { address = %[5]q, hostname = "*" } ]
`, sock, httpsAddr, certPath, keyPath, httpAddr, origin.addr)
	startProxy(t, dir, sock, cfg, httpsAddr, httpAddr)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	h2Client := &http.Client{Timeout: 30 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "a.test"},
		DialTLSContext: func(ctx context.Context, _, _ string, cfg *tls.Config) (net.Conn, error) {
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, "tcp", httpsAddr)
		},
	}}
	var d net.Dialer
	h1Client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 300,
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", httpAddr) },
	}}
	clients := []struct {
		name string
		c    *http.Client
		base string
	}{{"h2", h2Client, "https://a.test"}, {"h1", h1Client, "http://a.test"}}

	// echo posts body to path and checks that it comes back byte-exact.
	echo := func(c *http.Client, url string, body []byte) error {
		resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("%s: reading the body: %v", url, err)
		}
		sum := sha256.Sum256(body)
		if resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.Header.Get("X-Sum") != hex.EncodeToString(sum[:]) {
			return fmt.Errorf("%s: status %d, %d bytes back of %d sent (equal %v), X-Sum %q, X-Proto %q",
				url, resp.StatusCode, len(got), len(body), bytes.Equal(got, body), resp.Header.Get("X-Sum"), resp.Header.Get("X-Proto"))
		}
		if p := resp.Header.Get("X-Proto"); p != "HTTP/2.0" {
			return fmt.Errorf("%s: the backend was spoken to in %s", url, p)
		}
		return nil
	}
	bodyOf := func(i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("<%d>", i)), 1+i*7%1500)
	}
	sozutest.WaitFor(t, 20*time.Second, "the cluster answers over HTTP/2", func() bool {
		return echo(h1Client, "http://a.test/", []byte("hello")) == nil
	})

	t.Run("200 concurrent requests through at most 4 backend connections", func(t *testing.T) {
		const n = 200
		errs := make(chan error, n)
		for i := range n {
			cl := clients[i%2]
			go func() { errs <- echo(cl.c, cl.base+"/gate", bodyOf(i)) }()
		}
		// All 200 are in the backend at once: 4 connections × 60 streams.
		sozutest.WaitFor(t, 30*time.Second, "200 requests in the backend", func() bool { return inGate.Load() == n })
		close(gate)
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if a := origin.accepted.Load(); a > 4 {
			t.Errorf("the backend accepted %d connections, want at most 4", a)
		}
	})

	t.Run("curl --http2, nghttp and h2load", func(t *testing.T) {
		payload := filepath.Join(dir, "payload")
		body := bytes.Repeat([]byte("h2c backend payload "), 20000) // 400 kB, several windows
		os.WriteFile(payload, body, 0o600)
		run := func(name string, args ...string) []byte {
			cmd := exec.Command(name, args...)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := sozutest.RunWithTimeout(cmd, 60*time.Second); err != nil {
				t.Fatalf("%s: %v: %s", name, err, errOut.String())
			}
			return out.Bytes()
		}
		resolve := fmt.Sprintf("a.test:%d:127.0.0.1", httpsPort)
		url := fmt.Sprintf("https://a.test:%d/echo", httpsPort)
		if got := run("/usr/bin/curl", "-sS", "--http2", "--cacert", caPath, "--resolve", resolve,
			"--data-binary", "@"+payload, url); !bytes.Equal(got, body) {
			t.Errorf("curl --http2: %d bytes back of %d", len(got), len(body))
		}
		if got := run("/usr/bin/curl", "-sS", "--http1.1", "--data-binary", "@"+payload,
			fmt.Sprintf("http://127.0.0.1:%d/echo", httpPort)); !bytes.Equal(got, body) {
			t.Errorf("curl --http1.1: %d bytes back of %d", len(got), len(body))
		}
		if got := run("/usr/bin/nghttp", "-d", payload, "--cert", "", fmt.Sprintf("https://127.0.0.1:%d/echo", httpsPort)); !bytes.Equal(got, body) {
			t.Errorf("nghttp: %d bytes back of %d", len(got), len(body))
		}
		// A 15-byte stream window (-w 4): the stream session reads from
		// its backend 15 bytes at a time and waits for window in between,
		// while its body copier still streams the upload.
		if got := run("/usr/bin/nghttp", "-w", "4", "-d", payload, "--cert", "", fmt.Sprintf("https://127.0.0.1:%d/echo", httpsPort)); !bytes.Equal(got, body) {
			t.Errorf("nghttp -w 4: %d bytes back of %d", len(got), len(body))
		}
		small := filepath.Join(dir, "small")
		os.WriteFile(small, bytes.Repeat([]byte("x"), 3000), 0o600)
		out := string(run("/usr/bin/h2load", "-n", "2000", "-c", "4", "-m", "50", "-d", small,
			fmt.Sprintf("https://127.0.0.1:%d/echo", httpsPort)))
		if !strings.Contains(out, "2000 succeeded, 0 failed, 0 errored") || !strings.Contains(out, "2000 2xx") {
			t.Errorf("h2load:\n%s", out)
		}
		if a := origin.accepted.Load(); a > 4 {
			t.Errorf("the backend accepted %d connections, want at most 4", a)
		}
	})

	t.Run("a backend RST_STREAM fails only its request", func(t *testing.T) {
		before := origin.accepted.Load()
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := echo(clients[i%2].c, clients[i%2].base+"/ok", bodyOf(i)); err != nil {
					errs <- err
				}
			}()
		}
		for _, cl := range clients {
			resp, err := cl.c.Get(cl.base + "/reset")
			if err != nil {
				t.Errorf("%s: reset before the response: %v, want a 502", cl.name, err)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 502 {
				t.Errorf("%s: reset before the response: status %d, want 502", cl.name, resp.StatusCode)
			}
			// Reset after the head: the client sees its response cut (a
			// stream error in HTTP/2, a closed connection in HTTP/1.1).
			resp, err = cl.c.Get(cl.base + "/reset-mid")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				t.Errorf("%s: reset mid-body: the client saw a complete response", cl.name)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if a := origin.accepted.Load(); a != before {
			t.Errorf("the backend accepted %d new connections: a stream reset must not end its connection", a-before)
		}
	})

	t.Run("a stalled backend stream or client holds no other request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stalled sync.WaitGroup
		for _, cl := range clients {
			for range 3 {
				stalled.Add(1)
				go func() {
					defer stalled.Done()
					req, _ := http.NewRequestWithContext(ctx, "GET", cl.base+"/stall", nil)
					if resp, err := cl.c.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}()
			}
		}
		// A client that asks for 8 MiB and reads none of it.
		slow, err := net.Dial("tcp", httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		io.WriteString(slow, "GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n")
		before := origin.accepted.Load()
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := echo(clients[i%2].c, clients[i%2].base+"/beside", bodyOf(i)); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if a := origin.accepted.Load(); a > 4 {
			t.Errorf("the backend accepted %d connections (%d before), want at most 4", a, before)
		}
		cancel()
		stalled.Wait()
	})

	t.Run("backend GOAWAY mid-load costs no client an error", func(t *testing.T) {
		before := origin.accepted.Load()
		var done atomic.Int64
		const workers, each = 16, 40
		errs := make(chan error, workers*each)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := clients[w%2]
				for i := range each {
					if err := echo(cl.c, cl.base+"/load", bodyOf(w*each+i)); err != nil {
						errs <- fmt.Errorf("%s: %w", cl.name, err)
					}
					done.Add(1)
				}
			}()
		}
		for _, at := range []int64{100, 300, 500} {
			sozutest.WaitFor(t, 30*time.Second, fmt.Sprintf("%d requests done", at), func() bool { return done.Load() >= at })
			origin.goAway()
		}
		wg.Wait()
		close(errs)
		n := 0
		for err := range errs {
			if n++; n <= 10 {
				t.Error(err)
			}
		}
		if n > 0 {
			t.Errorf("%d of %d requests failed", n, workers*each)
		}
		if a := origin.accepted.Load(); a == before {
			t.Errorf("no new backend connection after GOAWAY")
		}
	})
}
