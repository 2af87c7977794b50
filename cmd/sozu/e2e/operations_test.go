package e2e

import (
	"bytes"
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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// notifyListener is a datagram socket standing for systemd's
// NOTIFY_SOCKET: it keeps every notification in arrival order.
type notifyListener struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T, dir string) *notifyListener {
	t.Helper()
	n := &notifyListener{path: filepath.Join(dir, "notify.sock")}
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := l.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

// lines returns the notifications' lines, in order.
func (n *notifyListener) lines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, m := range n.msgs {
		out = append(out, strings.Split(strings.TrimSpace(m), "\n")...)
	}
	return out
}

// inOrder reports whether want occurs in the notifications' lines as a
// subsequence (other lines may come between).
func (n *notifyListener) inOrder(want ...string) bool {
	i := 0
	for _, l := range n.lines() {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	return i == len(want)
}

// httpsLoad runs workers goroutines of HTTPS GETs to url, each on a new
// connection (a full handshake each time), until stop is called, which
// returns the count of answers and the failures (errors and non-200s).
func httpsLoad(pool *x509.CertPool, url string, workers int) (stop func() (ok int64, failures []string)) {
	var (
		n    atomic.Int64
		mu   sync.Mutex
		bad  []string
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
				DisableKeepAlives: true,
			}}
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
					mu.Unlock()
					continue
				}
				n.Add(1)
			}
		}()
	}
	var once sync.Once
	return func() (int64, []string) {
		once.Do(func() { close(done) })
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return n.Load(), bad
	}
}

// TestOperationsUnderLoad runs the whole zero-downtime sequence in one
// proxy lifetime, under load: wrk (20 keep-alive connections, at least
// 15 s) on the HTTP listener and a loop of HTTPS requests, each on a new
// connection, on the HTTPS listener, through 2 workers, across a reload
// that adds a backend, a main upgrade, an upgrade of each worker and a
// certificate replacement. wrk sees no socket error and no non-2xx, and
// no HTTPS request fails; the added backend gets traffic; the PID file
// names the new supervisor; a WebSocket and a TCP relay opened before the
// worker upgrades still echo after them; an HTTP/2 connection with a
// stream in flight across the main upgrade (whose new supervisor upgrades
// the inherited workers) and another across the worker upgrades each get
// a GOAWAY and their stream finishes, while new HTTP/2 connections are
// served; the replaced certificate survives a further worker upgrade and
// a second main upgrade; a TLS client sees the new
// certificate; the access log and the metrics still flow at the end; the
// datagram listener on NOTIFY_SOCKET saw READY, RELOADING, READY, MAINPID
// of each new supervisor and STOPPING, in that order, and every
// STATUS=serving counts the 2 serving workers; and `sozu audit
// verify` passes over the trail.
func TestOperationsUnderLoad(t *testing.T) {
	dir := t.TempDir()
	notify := listenNotify(t, dir)
	ca := newTestCA(t)
	oldCert, oldKey := ca.issue(t, dir, "old", "localhost")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)

	var served, servedB2 atomic.Int64
	// Streams held in flight across an upgrade: the origin answers each
	// path once its gate is opened.
	slowArrived := make(chan string, 4)
	gates := map[string]*gate{"/slow-main": newGate(), "/slow-worker": newGate()}
	for _, g := range gates {
		t.Cleanup(g.open)
	}
	// Both backends of cluster app answer alike (a stream in flight may
	// reach either): a gated path waits for its gate, anything else is
	// counted.
	backend := func(count *atomic.Int64) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if g := gates[r.URL.Path]; g != nil {
				slowArrived <- r.URL.Path
				<-g.ch
				fmt.Fprint(w, "finished")
				return
			}
			served.Add(1)
			if count != nil {
				count.Add(1)
			}
			fmt.Fprint(w, "ok")
		})
	}
	origin := startHTTPOrigin(t, backend(nil))
	origin2 := startHTTPOrigin(t, backend(&servedB2))
	ws := startRawOrigin(t, wsEcho)
	echo := startRawOrigin(t, tcpEcho)

	r := &upgradeRig{dir: dir, bin: filepath.Join(dir, "bin", "sozu"), pidFile: filepath.Join(dir, "run", "sozu.pid"),
		audit: filepath.Join(dir, "audit", "audit.jsonl"), key: filepath.Join(dir, "audit", "audit.key"),
		front: fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)), tcp: fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))}
	secure := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	access := filepath.Join(dir, "access.log")
	for _, d := range []string{filepath.Dir(r.bin), filepath.Dir(r.pidFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, sozutest.Bin, r.bin, 0o755)
	sock := filepath.Join(dir, "sozu.sock")
	config := func(extraBackend string) string {
		return fmt.Sprintf(`command_socket = %[1]q
worker_count = 2
worker_timeout = 5
log_level = "info"
activate_listeners = true
pid_file_path = %[2]q
audit_logs_json_target = %[3]q
audit_hmac_key_file = %[4]q
access_logs_target = %[14]q
soft_stop_deadline = 60

[[listeners]]
protocol = "http"
address = %[5]q

[[listeners]]
protocol = "https"
address = %[10]q
alpn_protocols = ["h2", "http/1.1"]
# The streams held in flight across the upgrades wait on a gate: no
# deadline after the GOAWAY (upstream's default is 5 s).
h2_graceful_shutdown_deadline_seconds = 0

[[listeners]]
protocol = "tcp"
address = %[6]q

[clusters.app]
protocol = "http"
frontends = [ { address = %[5]q, hostname = "*" }, { address = %[10]q, hostname = "localhost", certificate = %[11]q, key = %[12]q } ]
backends = [ { address = %[7]q, backend_id = "b1" }%[13]s ]

[clusters.ws]
protocol = "http"
frontends = [ { address = %[5]q, hostname = "ws.test" } ]
backends = [ { address = %[8]q } ]

[clusters.echo]
protocol = "tcp"
frontends = [ { address = %[6]q } ]
backends = [ { address = %[9]q } ]
`, sock, r.pidFile, r.audit, r.key, r.front, r.tcp, origin.addr, ws.addr, echo.addr,
			secure, oldCert, oldKey, extraBackend, "file://"+access)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config("")), 0o600); err != nil {
		t.Fatal(err)
	}
	r.p = sozutest.StartWith(t, dir, cfgPath, sock, func(cmd *exec.Cmd) {
		cmd.Path, cmd.Args[0] = r.bin, r.bin
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.path)
	})
	waitListening(t, r.front, r.tcp, secure)
	sozutest.WaitFor(t, 30*time.Second, "READY=1 on NOTIFY_SOCKET", func() bool { return notify.inOrder("READY=1") })
	first := r.pid(t)
	if first != r.p.Cmd.Process.Pid {
		t.Fatalf("PID file names %d, the supervisor is %d", first, r.p.Cmd.Process.Pid)
	}

	const each = 300
	mark := func(what string) {
		t.Helper()
		n := served.Load()
		sozutest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d requests %s", each, what), func() bool { return served.Load() >= n+each })
	}
	const minLoad = 15 * time.Second
	loadStart := time.Now()
	stopWrk := startWrk(t, "http://"+r.front+"/")
	// Requests name host localhost, the certificate's (an IP authority
	// would be a misdirected request: 421).
	secureURL := fmt.Sprintf("https://localhost:%s", secure[strings.LastIndexByte(secure, ':')+1:])
	stopHTTPS := httpsLoad(pool, secureURL+"/", 2)
	t.Cleanup(func() { stopHTTPS() })
	mark("before the reload")

	// 1. A reload that adds a backend.
	if err := os.WriteFile(cfgPath, []byte(config(fmt.Sprintf(`, { address = %q, backend_id = "b2" }`, origin2.addr))), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := r.p.MustCLI("reload"); !strings.Contains(out, "b2") {
		t.Fatalf("reload answered %q, want the added backend b2", out)
	}
	sozutest.WaitFor(t, 30*time.Second, "the added backend b2 serves", func() bool { return servedB2.Load() >= each })
	sozutest.WaitFor(t, 30*time.Second, "RELOADING=1 then READY=1 on NOTIFY_SOCKET", func() bool {
		return notify.inOrder("READY=1", "RELOADING=1", "READY=1")
	})

	// 2. A main upgrade, with an HTTP/2 stream in flight.
	h2m := dialH2Localhost(t, secure, pool)
	defer h2m.close()
	h2m.inFlight(t, slowArrived, "/slow-main")
	out := r.p.MustCLI("upgrade")
	second := r.pid(t)
	if second == first || second == 0 || !strings.Contains(out, fmt.Sprintf("pid %d took over from pid %d", second, first)) {
		t.Fatalf("after the upgrade the PID file names %d (old %d); answer %q", second, first, out)
	}
	sozutest.WaitFor(t, 20*time.Second, fmt.Sprintf("the old supervisor %d exits", first), func() bool { return gone(first) })
	sozutest.WaitFor(t, 60*time.Second, "the workers are children of the new supervisor", func() bool {
		_, pids := workersOf(t, r.p.Sock)
		return len(pids) == 2 && parentOf(pids[0]) == second && parentOf(pids[1]) == second
	})
	mark("after the main upgrade")
	// The new supervisor upgraded the inherited workers one by one: the
	// HTTP/2 connection got a GOAWAY and its stream still finishes.
	h2m.finishAcross(t, 1, gates["/slow-main"], "the main upgrade")
	n2 := servedB2.Load()
	sozutest.WaitFor(t, 30*time.Second, "b2 still serves after the main upgrade", func() bool { return servedB2.Load() > n2 })

	// The new supervisor holds the state the old one had: reloading the
	// same file changes nothing, and it notifies systemd around it too.
	if out := r.p.MustCLI("reload"); !strings.Contains(out, "0 added, 0 changed, 0 removed") {
		t.Fatalf("a reload of the same file after the main upgrade answered %q, want no change", out)
	}
	// A new HTTP/2 connection is served by the inherited workers.
	h2new := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	if resp, err := h2new.Get(secureURL + "/after-main-upgrade"); err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("a new HTTP/2 connection after the main upgrade: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	h2new.CloseIdleConnections()

	// 3. Long-lived connections, then an upgrade of each worker.
	wsC, tcpC := openWS(t, r.front), openTCP(t, r.tcp)
	wsC.echo(t, "ws before")
	tcpC.echo(t, "tcp before")
	h2c := dialH2Localhost(t, secure, pool)
	defer h2c.close()
	h2c.inFlight(t, slowArrived, "/slow-worker")
	upgradeEachWorker(t, r, mark)
	wsC.echo(t, "ws after the worker upgrades")
	tcpC.echo(t, "tcp after the worker upgrades")
	// The draining worker told the HTTP/2 client to go away; the stream in
	// flight still finishes.
	h2c.finishAcross(t, 1, gates["/slow-worker"], "the worker upgrades")
	if resp, err := h2new.Get(secureURL + "/new"); err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("a new HTTP/2 connection after the worker upgrades: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// 4. A certificate replacement.
	newCert, newKey := ca.issue(t, dir, "new", "localhost")
	newPEM, err := os.ReadFile(newCert)
	if err != nil {
		t.Fatal(err)
	}
	r.p.MustCLI("certificate", "replace", "--address", secure, "--new-certificate", newCert, "--new-key", newKey,
		"--old-certificate", oldCert)
	seesNew := func(when string) {
		t.Helper()
		for range 8 { // both workers, whichever accepts
			c, err := tls.Dial("tcp", secure, &tls.Config{RootCAs: pool, ServerName: "localhost"})
			if err != nil {
				t.Fatalf("TLS %s: %v", when, err)
			}
			got := c.ConnectionState().PeerCertificates[0].Raw
			c.Close()
			if fp := fingerprintDER(got); fp != fingerprint(newPEM) {
				t.Fatalf("%s a TLS client sees %s, want the new certificate %s", when, fp, fingerprint(newPEM))
			}
		}
	}
	seesNew("after the replacement")
	mark("after the certificate replacement")

	// The replaced certificate is part of the state a new worker and a new
	// supervisor take over.
	ids, _ := workersOf(t, r.p.Sock)
	r.p.MustCLI("upgrade", "--worker", strconv.Itoa(int(ids[0])))
	seesNew("after a worker upgrade that follows the replacement")
	out = r.p.MustCLI("upgrade")
	third := r.pid(t)
	if third == second || !strings.Contains(out, fmt.Sprintf("pid %d took over from pid %d", third, second)) {
		t.Fatalf("second main upgrade: PID file %d (old %d); answer %q", third, second, out)
	}
	sozutest.WaitFor(t, 60*time.Second, "the workers are children of the third supervisor", func() bool {
		_, pids := workersOf(t, r.p.Sock)
		return gone(second) && len(pids) == 2 && parentOf(pids[0]) == third && parentOf(pids[1]) == third
	})
	seesNew("after a main upgrade that follows the replacement")
	mark("after the second main upgrade")

	if rest := minLoad - time.Since(loadStart); rest > 0 {
		<-time.After(rest) // wrk -c 20 -d 15s: the load runs at least that long
	}
	report := stopWrk()
	okHTTPS, failures := stopHTTPS()
	t.Logf("wrk:\n%s", report)
	t.Logf("HTTPS loop: %d answers, %d failures", okHTTPS, len(failures))
	if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(report); m == nil {
		t.Errorf("no request count in wrk's report")
	}
	for _, bad := range []string{"Socket errors", "Non-2xx or 3xx responses"} {
		if strings.Contains(report, bad) {
			t.Errorf("wrk reports %s", bad)
		}
	}
	if len(failures) > 0 || okHTTPS == 0 {
		t.Errorf("HTTPS loop: %d answers, failures:\n%s", okHTTPS, strings.Join(failures, "\n"))
	}
	wsC.echo(t, "ws at the end")
	tcpC.echo(t, "tcp at the end")
	for _, c := range []net.Conn{wsC.c, tcpC.c, h2c.c} {
		c.Close() // the drained workers exit once their last connection ends
	}

	// Access logs and metrics still flow from the upgraded workers.
	if got := curl(t, "http://"+r.front+"/after-everything"); got != "ok" {
		t.Fatalf("GET /after-everything: %q", got)
	}
	sozutest.WaitFor(t, 10*time.Second, "the access record of /after-everything", func() bool {
		b, _ := os.ReadFile(access)
		return strings.Contains(string(b), "/after-everything")
	})
	metrics := r.p.MustCLI("metrics", "get", "-w", "--no-clusters", "-n", "http.requests")
	if strings.Count(metrics, "worker ") != 2 || !regexp.MustCompile(`http\.requests\D+[1-9]`).MatchString(metrics) {
		t.Errorf("metrics after the upgrades:\n%s", metrics)
	}
	if p := r.pid(t); p != third {
		t.Errorf("the PID file names %d, the supervisor is %d", p, third)
	}

	t.Logf("%v: load and checks done; shutting down", time.Since(loadStart))
	r.p.MustCLI("shutdown")
	select {
	case <-r.p.Done:
	case <-time.After(60 * time.Second):
		t.Fatal("the proxy did not stop")
	}
	t.Logf("%v: stopped", time.Since(loadStart))
	if n := r.pid(t); n != 0 {
		t.Errorf("the PID file still names %d after a clean stop", n)
	}
	want := []string{"READY=1", "RELOADING=1", "READY=1", fmt.Sprintf("MAINPID=%d", second), "RELOADING=1", "READY=1",
		fmt.Sprintf("MAINPID=%d", third), "STOPPING=1"}
	sozutest.WaitFor(t, 10*time.Second, fmt.Sprintf("%v in order on NOTIFY_SOCKET", want), func() bool { return notify.inOrder(want...) })
	t.Logf("NOTIFY_SOCKET: %q", notify.lines())
	// The STATUS systemd shows counts the workers that serve, not those
	// still draining after an upgrade (inherited by a new supervisor).
	for _, l := range notify.lines() {
		if strings.HasPrefix(l, "STATUS=serving:") && l != "STATUS=serving: 2 workers" {
			t.Errorf("NOTIFY_SOCKET %q, want STATUS=serving: 2 workers (worker_count = 2)", l)
		}
	}
	t.Logf("audit verify: %s", r.verify(t))
	for _, rec := range [][]string{{`"code":"SZ2002"`, `"result":"ok"`, "hands over to pid"}, {`"verb":"backend.add"`, "b2"}, {`"verb":"certificate.replace"`, `"result":"ok"`}} {
		if len(r.records(t, rec...)) == 0 {
			t.Errorf("no audit record with %q", rec)
		}
	}
}

// dialH2Localhost opens an HTTP/2 connection (ALPN h2, verified against
// pool) for host localhost.
func dialH2Localhost(t *testing.T, addr string, pool *x509.CertPool) *h2raw {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q", p)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &h2raw{c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	h.fr.WriteSettings()
	return h
}

// getLocalhost sends a GET of path for host localhost on stream id.
func (h *h2raw) getLocalhost(id uint32, path string) error {
	h.buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", path}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: bytes.Clone(h.buf.Bytes()), EndStream: true, EndHeaders: true})
}

// h2Status decodes the :status of a response header block.
func h2Status(t *testing.T, block []byte) string {
	t.Helper()
	fields, err := hpack.NewDecoder(4096, nil).DecodeFull(block)
	if err != nil {
		t.Fatalf("response header block: %v", err)
	}
	for _, f := range fields {
		if f.Name == ":status" {
			return f.Value
		}
	}
	return ""
}

// fingerprintDER is the hex SHA-256 of a DER certificate.
func fingerprintDER(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// gate holds the origin's answer to a path until opened.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate  { return &gate{ch: make(chan struct{})} }
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// inFlight sends GET path on stream 1 and waits until the origin holds it.
func (h *h2raw) inFlight(t *testing.T, arrived <-chan string, path string) {
	t.Helper()
	h.c.SetDeadline(time.Now().Add(120 * time.Second))
	if err := h.getLocalhost(1, path); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-arrived:
		if got != path {
			t.Fatalf("the origin holds %s, want %s", got, path)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the HTTP/2 stream %s did not reach the origin", path)
	}
}

// finishAcross opens g and reads the connection until stream id has
// answered 200 "finished" and a GOAWAY came: the worker that held the
// connection drains it across what (an upgrade) without cutting the
// stream in flight.
func (h *h2raw) finishAcross(t *testing.T, id uint32, g *gate, what string) {
	t.Helper()
	g.open()
	goaway, status, body := false, "", ""
	for !goaway || status == "" || !strings.Contains(body, "finished") {
		f, err := h.next(t)
		if err != nil {
			t.Fatalf("HTTP/2 connection across %s: %v (GOAWAY %v, status %q, body %q)", what, err, goaway, status, body)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			goaway = true
		case *http2.HeadersFrame:
			if f.StreamID == id {
				status = h2Status(t, f.HeaderBlockFragment())
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				body += string(f.Data())
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d reset (%v) across %s", f.StreamID, f.ErrCode, what)
		}
	}
	if status != "200" {
		t.Errorf("the HTTP/2 stream in flight across %s: status %q body %q", what, status, body)
	}
}
