package e2e

import (
	"bufio"
	"bytes"
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
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// reviewRig is a proxy writing JSON access records over UDP, with an HTTP
// listener (request_timeout 1 s) and an HTTPS one (certificate for
// a.test), both routing a.test to a live origin through a frontend tagged
// team=pay, and dead.test to a backend that refuses connections.
type reviewRig struct {
	access           *udpCollector
	front, tls, sock string
	barriers         int // barrier requests sent so far
}

func startReviewRig(t *testing.T) *reviewRig {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t)
	cp, kp := ca.issuePEM(t, nil, nil, "a.test", "dead.test")
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	if err := os.WriteFile(certPath, cp, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &reviewRig{access: listenUDP(t), front: freeAddr(t), tls: freeAddr(t)}
	dead := freeAddr(t) // nothing listens there
	sock := filepath.Join(dir, "sozu.sock")
	r.sock = sock
	cfg := fmt.Sprintf(`command_socket = %[1]q
worker_count = 1
worker_timeout = 10
activate_listeners = true
access_logs_target = "udp://%[2]s"
access_logs_format = "json"

[[listeners]]
protocol = "http"
address = %[3]q
request_timeout = 1

[[listeners]]
protocol = "https"
address = %[4]q
certificate = %[5]q
key = %[6]q

[clusters.app]
protocol = "http"
frontends = [
  { address = %[3]q, hostname = "a.test", tags = { team = "pay" } },
  { address = %[4]q, hostname = "a.test", path = "/api", tags = { team = "pay" } },
]
backends = [ { address = %[7]q } ]

[clusters.dead]
protocol = "http"
frontends = [ { address = %[3]q, hostname = "dead.test" } ]
backends = [ { address = %[8]q, backend_id = "gone" } ]
`, sock, r.access.addr(), r.front, r.tls, certPath, keyPath, okOrigin(t).addr, dead)
	startProxy(t, dir, sock, cfg, r.front, r.tls)
	return r
}

// barrier returns once every access record of the sessions the test is
// done with has come: it waits until the gauge ended (client_connections,
// or h2_active_streams while an HTTP/2 connection stays open) is 0, as a
// session records its requests before its gauge goes down, then sends one
// more request, on a connection of its own, and waits for its record. The
// one worker ships its records in order, and they cross the supervisor
// and the loopback in order: a record that has not come before the
// barrier's never will. It stands for a pause that let such a record come.
func (r *reviewRig) barrier(t *testing.T, ended string) {
	t.Helper()
	sozutest.WaitFor(t, 10*time.Second, ended+" is 0", func() bool {
		return queryMetrics(t, r.sock, nil).GetProxying()[ended].GetGauge() == 0
	})
	r.barriers++
	path := fmt.Sprintf("/barrier-%d", r.barriers)
	if out, err := rawExchange(t, r.front, []byte("GET "+path+" HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")); err != nil || !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("barrier request %s: %q, %v", path, out, err)
	}
	r.access.record(t, path)
}

// recordOf waits for the one JSON access record of the client connection
// whose local port is port, which has ended, and fails if there is more
// than one.
func (r *reviewRig) recordOf(t *testing.T, port int) map[string]any {
	t.Helper()
	var recs []map[string]any
	collect := func() {
		recs = recs[:0]
		for _, m := range r.access.find(`"port":` + fmt.Sprint(port)) {
			var rec map[string]any
			if err := json.Unmarshal([]byte(m), &rec); err != nil {
				t.Fatalf("%v: %s", err, m)
			}
			if ecs(rec, "source.port") == float64(port) {
				recs = append(recs, rec)
			}
		}
	}
	sozutest.WaitFor(t, 10*time.Second, fmt.Sprintf("the access record of client port %d", port), func() bool {
		collect()
		return len(recs) > 0
	})
	r.barrier(t, pm.ClientConnections) // a second record would be a defect: it would have come by now
	collect()
	if len(recs) != 1 {
		t.Fatalf("%d records for client port %d, want 1: %v", len(recs), port, recs)
	}
	return recs[0]
}

// TestAccessLogBytesOfUnparsedHead: bytes in counts every request byte
// read from the client (docs/observability.md), also for a head that
// ended before it could be parsed: one too slow (408), one the proxy
// refused while reading it (431), one the client left. Their records
// showed 0 bytes in, while a head refused once parsed showed its size.
// Each record has a request id (trace.id) of its own: the one of the
// client that left had its session's.
func TestAccessLogBytesOfUnparsedHead(t *testing.T) {
	r := startReviewRig(t)
	huge := "GET /huge HTTP/1.1\r\nHost: a.test\r\nX-Big: " + strings.Repeat("a", 70000) + "\r\n\r\n"
	for _, c := range []struct {
		name     string
		send     string
		leave    bool   // close the connection's write side after sending
		status   any    // the record's status (nil: none)
		exact    bool   // bytes in must be len(send), else in (0, len(send)]
		response string // the answer's status line prefix ("" for none)
		outcome  any    // event.outcome
	}{
		{name: "slow head, 408", send: "GET /slow HTTP/1.1\r\nHost: a.test\r\n", status: float64(408), exact: true,
			response: "HTTP/1.1 408 ", outcome: "failure"},
		{name: "oversized field, 431", send: huge, status: float64(431), response: "HTTP/1.1 431 ", outcome: "failure"},
		{name: "client leaves mid-head", send: "GET /left HTTP/1.1\r\nHost: a.te", leave: true, status: nil, exact: true,
			outcome: "failure"},
		{name: "refused once parsed, 400", send: "GET /bad HTTP/1.1\r\nHost: a.test\r\nBad Field: x\r\n\r\n",
			status: float64(400), exact: true, response: "HTTP/1.1 400 ", outcome: "failure"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", r.front)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			port := conn.LocalAddr().(*net.TCPAddr).Port
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if c.leave {
				conn.Write([]byte(c.send)) // all of it, then the FIN
				conn.(*net.TCPConn).CloseWrite()
			} else {
				go conn.Write([]byte(c.send)) // the proxy may answer before reading it all
			}
			b, _ := io.ReadAll(conn)
			if !strings.HasPrefix(string(b), c.response) || (c.response == "" && len(b) > 0) {
				t.Fatalf("answer %q, want %q", b, c.response)
			}
			rec := r.recordOf(t, port)
			if got := ecs(rec, "http.response.status_code"); got != c.status {
				t.Errorf("status %v, want %v: %v", got, c.status, rec)
			}
			if got := ecs(rec, "event.outcome"); got != c.outcome {
				t.Errorf("event.outcome %v, want %v", got, c.outcome)
			}
			if id := ecs(rec, "trace.id"); id == nil || id == ecs(rec, "sozu.session_id") {
				t.Errorf("trace.id %v: want a request id of its own, not the session's", id)
			}
			n, _ := ecs(rec, "http.request.bytes").(float64)
			if c.exact && int(n) != len(c.send) || !c.exact && (n <= 0 || int(n) > len(c.send)) {
				t.Errorf("http.request.bytes = %v, want %d (exact %v): %v", n, len(c.send), c.exact, rec)
			}
		})
	}
}

// TestAccessLogBackendTimeOnlyWithABackend: a record has a response time
// (sozu.response_time, the backend's share) only when a backend was
// reached, as it has a backend address and id only then; a request whose
// every connect attempt failed (503) is the proxy's own time. Its record
// had a response time and no backend.
func TestAccessLogBackendTimeOnlyWithABackend(t *testing.T) {
	r := startReviewRig(t)
	for _, c := range []struct {
		name, host string
		status     float64
		backend    bool
	}{
		{"forwarded", "a.test", 200, true},
		{"backend refuses connections, 503", "dead.test", 503, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", r.front)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			port := conn.LocalAddr().(*net.TCPAddr).Port
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET /bt HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", c.host)
			b, _ := io.ReadAll(conn)
			if want := fmt.Sprintf("HTTP/1.1 %d ", int(c.status)); !strings.HasPrefix(string(b), want) {
				t.Fatalf("answer %q, want %s", b, want)
			}
			rec := r.recordOf(t, port)
			if got := ecs(rec, "http.response.status_code"); got != c.status {
				t.Errorf("status %v, want %v", got, c.status)
			}
			dur, _ := ecs(rec, "event.duration").(float64)
			svc, _ := ecs(rec, "sozu.service_time").(float64)
			resp, hasResp := ecs(rec, "sozu.response_time").(float64)
			for _, f := range []string{"destination.ip", "sozu.backend_id"} {
				if got := ecs(rec, f) != nil; got != c.backend {
					t.Errorf("%s present %v, want %v: %v", f, got, c.backend, rec)
				}
			}
			if hasResp != c.backend {
				t.Errorf("sozu.response_time present %v, want %v (backend reached %v): %v", hasResp, c.backend, c.backend, rec)
			}
			if dur <= 0 || svc < 0 || svc > dur || resp < 0 || svc+resp != dur {
				t.Errorf("times: duration %v, service %v, response %v", dur, svc, resp)
			}
		})
	}
}

// TestAccessLogMalformedHTTP2StreamTags: the record of an HTTP/2 stream
// reset as malformed shows, as a refused HTTP/1.1 head's does, the tags of
// the frontend whose hostname is exactly its authority (no frontend routed
// it); it shares the connection's session id with the connection's other
// streams, each with a trace id of its own. Its record had no labels.
func TestAccessLogMalformedHTTP2StreamTags(t *testing.T) {
	r := startReviewRig(t)
	h := dialH2(t, r.tls)
	defer h.close()
	port := h.c.LocalAddr().(*net.TCPAddr).Port
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("GET", "/api/ok"), EndStream: true, EndHeaders: true})
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: h.block("GET", "/api/mal", "connection", "close"),
		EndStream: true, EndHeaders: true})
	var ok, reset bool
	for !(ok && reset) {
		f, err := h.next(t)
		if err != nil {
			t.Fatalf("ok %v, reset %v: %v", ok, reset, err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			ok = ok || f.StreamID == 1 && f.StreamEnded()
		case *http2.RSTStreamFrame:
			if f.StreamID == 3 {
				reset = true
			}
		}
	}
	var recs []map[string]any
	sozutest.WaitFor(t, 10*time.Second, "the records of both streams", func() bool {
		recs = recs[:0]
		for _, m := range r.access.find(`"port":` + fmt.Sprint(port)) {
			var rec map[string]any
			json.Unmarshal([]byte(m), &rec)
			if ecs(rec, "source.port") == float64(port) {
				recs = append(recs, rec)
			}
		}
		return len(recs) >= 2
	})
	r.barrier(t, pm.H2ActiveStreams) // a third record would have come by now
	if n := len(r.access.find(`"port":` + fmt.Sprint(port))); n != 2 {
		t.Fatalf("%d records for the connection, want 2", n)
	}
	if ecs(recs[0], "sozu.session_id") != ecs(recs[1], "sozu.session_id") || ecs(recs[0], "trace.id") == ecs(recs[1], "trace.id") {
		t.Errorf("streams of one connection: want one session id, two trace ids: %v", recs)
	}
	for _, rec := range recs {
		mal := ecs(rec, "event.reason") != nil
		if got, want := ecs(rec, "url.path"), map[bool]string{false: "/api/ok", true: "/api/mal"}[mal]; got != want {
			t.Errorf("url.path %v, want %s: %v", got, want, rec)
		}
		if got := ecs(rec, "labels.team"); got != "pay" {
			t.Errorf("labels.team = %#v, want \"pay\" (malformed: %v): %v", got, mal, rec)
		}
	}
}

// A response the backend cuts short (it closes after part of a
// Content-Length or chunked body, small enough to be copied or large
// enough to be spliced) keeps its status in the access record, which is a
// failure all the same (event.outcome, the error level), saying why
// (event.reason), as the client got a truncated answer; a close-delimited
// body ended by the close is a success.
func TestAccessLogResponseCutShort(t *testing.T) {
	big := bytes.Repeat([]byte("s"), 1<<20)
	origin := startRawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch req.URL.Path {
		case "/length":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
		case "/spliced":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\n\r\n")
			c.Write(big)
		case "/close":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
		}
	})
	udp := listenUDP(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	front := freeAddr(t)
	cfg := fmt.Sprintf("access_logs_target = \"udp://%s\"\naccess_logs_format = \"json\"\n", udp.addr()) +
		simpleHTTPConfig(sock, front, origin.addr, 1)
	startProxy(t, dir, sock, cfg, front)
	for _, c := range []struct {
		path    string
		failure bool
	}{{"/length", true}, {"/chunked", true}, {"/spliced", true}, {"/close", false}} {
		t.Run(c.path[1:], func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", front, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n", c.path)
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				_, err = io.Copy(io.Discard, resp.Body) // to its end, or to the cut
				if c.failure == (err == nil) {
					t.Errorf("the client read the body to %v", err)
				}
			}

			rec := udp.record(t, c.path)
			outcome, reason := ecs(rec, "event.outcome"), ecs(rec, "event.reason")
			if ecs(rec, "http.response.status_code") != float64(200) {
				t.Errorf("status %v, want the 200 that was sent", ecs(rec, "http.response.status_code"))
			}
			if c.failure && (outcome != "failure" || reason == nil) {
				t.Errorf("a response cut short: outcome %v, reason %v; want a failure saying why", outcome, reason)
			}
			if !c.failure && (outcome != "success" || reason != nil) {
				t.Errorf("a close-delimited response: outcome %v, reason %v; want a success", outcome, reason)
			}
		})
	}
}
