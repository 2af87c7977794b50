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
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

const pan = "4111111111111111"

// accessConfig is a configuration with one HTTP listener at front routing
// every host to origin through a frontend tagged team=pay, a TCP listener
// at tcpFront relaying to origin, and extra global keys.
func accessConfig(sock, front, tcpFront, origin, extra string) string {
	return fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true
log_level = "info"
%s

[[listeners]]
protocol = "http"
address = %q

[[listeners]]
protocol = "tcp"
address = %q

[clusters.app]
protocol = "http"
frontends = [ { address = %[3]q, hostname = "*", tags = { team = "pay", env = "test" } } ]
backends = [ { address = %[5]q } ]

[clusters.raw]
protocol = "tcp"
frontends = [ { address = %[4]q, tags = { kind = "tcp" } } ]
backends = [ { address = %[5]q } ]
`, sock, extra, front, tcpFront, origin)
}

// accessRig is a proxy on accessConfig: dir is its scratch directory,
// front and tcpFront its HTTP and TCP listeners.
type accessRig struct {
	p                    *sozutest.Proxy
	dir, front, tcpFront string
}

// startAccessRig starts a proxy on accessConfig, with an origin answering
// "ok" and the global keys extra returns for the scratch directory.
func startAccessRig(t *testing.T, extra func(dir string) string) *accessRig {
	t.Helper()
	r := &accessRig{dir: t.TempDir(), front: freeAddr(t), tcpFront: freeAddr(t)}
	sock := filepath.Join(r.dir, "sozu.sock")
	r.p = startProxy(t, r.dir, sock, accessConfig(sock, r.front, r.tcpFront, okOrigin(t).addr, extra(r.dir)), r.front, r.tcpFront)
	return r
}

func freeAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)) }

func okOrigin(t *testing.T) *httpOrigin {
	return startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
}

// get sends a GET for target to addr and returns the status line.
func get(t *testing.T, addr, target string) string {
	t.Helper()
	resp, err := rawExchange(t, addr, []byte("GET "+target+" HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: e2e-agent/1.0\r\nConnection: close\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(resp, "\r\n")
	return line
}

// TestAccessLogASCIIToFile: access_logs_target file:// in upstream's ascii
// layout: one line per request (forwarded, and the proxy's own 400) and
// per TCP session, with the tags and no full PAN; the file reopens on
// SIGHUP and on `sozu audit reopen` (logrotate), and nothing of the PAN
// reaches the main log or the audit trail either.
func TestAccessLogASCIIToFile(t *testing.T) {
	r := startAccessRig(t, func(dir string) string {
		return fmt.Sprintf("log_target = \"file://%s/logs/main.log\"\naccess_logs_target = \"file://%[1]s/logs/access.log\"\naudit_logs_target = \"%[1]s/logs/audit.log\"", dir)
	})
	p, front, tcpFront := r.p, r.front, r.tcpFront
	access := filepath.Join(r.dir, "logs", "access.log")
	mainLog := filepath.Join(r.dir, "logs", "main.log")
	auditLog := filepath.Join(r.dir, "logs", "audit.log")

	if got := get(t, front, "/pay/"+pan+"?card="+pan+"&n=1"); got != "HTTP/1.1 200 OK" {
		t.Fatalf("GET: %s", got)
	}
	if resp, _ := rawExchange(t, front, []byte("GET / HTTP/1.1\r\nHost: shop.test\r\nBad Field: x\r\n\r\n")); !strings.HasPrefix(resp, "HTTP/1.1 400") {
		t.Fatalf("malformed request: %q", resp)
	}
	c, err := net.Dial("tcp", tcpFront)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	io.ReadAll(c)
	c.Close()

	var lines []string
	sozutest.WaitFor(t, 10*time.Second, "three access lines", func() bool {
		b, _ := os.ReadFile(access)
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		return len(lines) >= 3
	})
	var ok, bad, tcp string
	for _, l := range lines {
		switch {
		case strings.HasSuffix(l, " 200"):
			ok = l
		case strings.HasSuffix(l, " 400"):
			bad = l
		case strings.HasSuffix(l, " TCP -"):
			tcp = l
		}
	}
	for _, want := range []string{" INFO-ACCESS ", "[env=test, team=pay, user-agent=e2e-agent/1.0] None http shop.test GET /pay/411111******1111?card=***&n=*** 200", " app app-0-"} {
		if !strings.Contains(ok, want) {
			t.Errorf("200 line lacks %q:\n%s", want, ok)
		}
	}
	if bad == "" || tcp == "" || !strings.Contains(tcp, "[kind=tcp]") || !strings.Contains(tcp, " raw ") {
		t.Errorf("400 or TCP line missing or wrong:\n%s", strings.Join(lines, "\n"))
	}

	// logrotate: rename, SIGHUP, the next line goes to a new file.
	rotate(t, access, ".1", func() { p.Cmd.Process.Signal(syscall.SIGHUP) }, front, "/after-rotation")
	// `sozu audit reopen` reopens the log files with the audit sinks.
	rotate(t, access, ".2", func() { p.MustCLI("audit", "reopen") }, front, "/after-reopen")

	for _, f := range []string{access + ".1", access + ".2", access, mainLog, auditLog} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(pan)) {
			t.Errorf("%s holds the full PAN", f)
		}
	}
}

// TestAccessLogProtobufDecodes: access_logs_format = "protobuf" writes
// upstream's length-delimited ProtobufAccessLog records (two zero bytes
// after each), which decode with proto/command.proto.
func TestAccessLogProtobufDecodes(t *testing.T) {
	r := startAccessRig(t, func(dir string) string {
		return fmt.Sprintf("access_logs_target = \"file://%s/access.pb\"\naccess_logs_format = \"protobuf\"", dir)
	})
	front, access := r.front, filepath.Join(r.dir, "access.pb")
	get(t, front, "/a?card="+pan)
	get(t, front, "/b")
	var recs []*command.ProtobufAccessLog
	sozutest.WaitFor(t, 10*time.Second, "two protobuf records", func() bool {
		b, _ := os.ReadFile(access)
		recs = recs[:0]
		r := bufio.NewReader(bytes.NewReader(b))
		for {
			m := &command.ProtobufAccessLog{}
			if err := protodelim.UnmarshalFrom(r, m); err != nil {
				break
			}
			if m.GetProtocol() == "http" { // not the TCP sessions of startProxy's probes
				recs = append(recs, m)
			}
			var zero [2]byte
			if _, err := io.ReadFull(r, zero[:]); err != nil || zero != [2]byte{} {
				t.Fatalf("a record is not followed by two zero bytes: %v %v", zero, err)
			}
		}
		return len(recs) >= 2
	})
	sort.Slice(recs, func(i, j int) bool {
		return recs[i].GetEndpoint().GetHttp().GetPath() < recs[j].GetEndpoint().GetHttp().GetPath()
	})
	m := recs[0]
	ep := m.GetEndpoint().GetHttp()
	if ep.GetPath() != "/a?card=***" || ep.GetStatus() != 200 || ep.GetMethod() != "GET" || ep.GetAuthority() != "shop.test" ||
		m.GetClusterId() != "app" || m.GetTags()["team"] != "pay" || m.GetProtocol() != "http" || m.GetUserAgent() != "e2e-agent/1.0" ||
		m.GetBytesOut() == 0 || m.GetSessionAddress().GetPort() == 0 || !strings.HasPrefix(m.GetTag(), "WRK-") {
		t.Errorf("record: %v", m)
	}
}

// udpCollector is a UDP listener collecting datagrams.
type udpCollector struct {
	pc   net.PacketConn
	mu   sync.Mutex
	msgs []string
}

func listenUDP(t *testing.T) *udpCollector {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &udpCollector{pc: pc}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.msgs = append(u.msgs, string(buf[:n]))
			u.mu.Unlock()
		}
	}()
	return u
}

func (u *udpCollector) addr() string { return u.pc.LocalAddr().String() }

// find returns the datagrams holding sub.
func (u *udpCollector) find(sub string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, m := range u.msgs {
		if strings.Contains(m, sub) {
			out = append(out, m)
		}
	}
	return out
}

// record waits for the first JSON access record holding the quoted string
// q (a path) and decodes it.
func (u *udpCollector) record(t *testing.T, q string) map[string]any {
	t.Helper()
	var rec map[string]any
	sozutest.WaitFor(t, 10*time.Second, "the access record of "+q, func() bool {
		msgs := u.find(`"` + q + `"`)
		if len(msgs) == 0 {
			return false
		}
		if err := json.Unmarshal([]byte(msgs[0]), &rec); err != nil {
			t.Fatalf("%v: %s", err, msgs[0])
		}
		return true
	})
	return rec
}

// TestAccessLogJSONOverUDPAndMainLogOverUDP: JSON access records, one per
// datagram, carry every ECS field the issue lists; the main log of the
// supervisor and of every worker reaches a udp:// log_target.
func TestAccessLogJSONOverUDPAndMainLogOverUDP(t *testing.T) {
	accessUDP, mainUDP := listenUDP(t), listenUDP(t)
	r := startAccessRig(t, func(string) string {
		return fmt.Sprintf("log_target = \"udp://%s\"\naccess_logs_target = \"udp://%s\"\naccess_logs_format = \"json\"", mainUDP.addr(), accessUDP.addr())
	})
	front := r.front
	get(t, front, "/json?card="+pan)

	rec := accessUDP.record(t, "/json")
	for _, f := range []string{"@timestamp", "event.duration", "http.request.method", "http.response.status_code",
		"url.domain", "url.path", "source.ip", "source.port", "user_agent.original", "labels", "trace.id"} {
		if ecs(rec, f) == nil {
			t.Errorf("ECS field %s missing: %v", f, rec)
		}
	}
	if ecs(rec, "labels.team") != "pay" || ecs(rec, "url.query") != "card=***" || ecs(rec, "http.response.status_code") != float64(200) {
		t.Errorf("record: %v", rec)
	}
	// The supervisor's lines and each worker's (they say "worker confined").
	sozutest.WaitFor(t, 10*time.Second, "main log lines of the supervisor and both workers over UDP", func() bool {
		return len(mainUDP.find("command socket ready")) > 0 && len(mainUDP.find("worker=0")) > 0 && len(mainUDP.find("worker=1")) > 0
	})
	for _, m := range append(accessUDP.find(""), mainUDP.find("")...) {
		if strings.Contains(m, pan) {
			t.Errorf("full PAN in a log datagram: %s", m)
		}
	}
}

// ecs follows a dotted ECS path in a decoded record.
func ecs(m map[string]any, path string) any {
	var v any = m
	if x, ok := m[path]; ok {
		return x
	}
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// TestAccessRecordsOnMainTargetFollowLogLevel: with no access_logs_target,
// access records share the main target and follow log_level as upstream's
// do (successes at info, failures at error), `sozu logging` included; a
// dedicated access_logs_target keeps every record whatever the level.
func TestAccessRecordsOnMainTargetFollowLogLevel(t *testing.T) {
	origin := okOrigin(t)
	for _, dedicated := range []bool{false, true} {
		t.Run(fmt.Sprintf("dedicated=%v", dedicated), func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, "sozu.sock")
			front, tcpFront := freeAddr(t), freeAddr(t)
			mainLog := filepath.Join(dir, "main.log")
			access := mainLog
			extra := fmt.Sprintf("log_target = \"file://%s\"", mainLog)
			if dedicated {
				access = filepath.Join(dir, "access.log")
				extra += fmt.Sprintf("\naccess_logs_target = \"file://%s\"", access)
			}
			cfg := strings.Replace(accessConfig(sock, front, tcpFront, origin.addr, extra), `log_level = "info"`, `log_level = "error"`, 1)
			p := startProxy(t, dir, sock, cfg, front, tcpFront)

			if got := get(t, front, "/quiet-success"); got != "HTTP/1.1 200 OK" {
				t.Fatalf("GET: %s", got)
			}
			if resp, _ := rawExchange(t, front, []byte("GET /loud-failure HTTP/1.1\r\nHost: shop.test\r\nBad Field: x\r\n\r\n")); !strings.HasPrefix(resp, "HTTP/1.1 400") {
				t.Fatalf("malformed request: %q", resp)
			}
			// Records of one worker arrive in order; the 400 may be served
			// by the other worker, so wait for it, then for a success sent
			// after `sozu logging info` on the same check.
			sozutest.WaitFor(t, 10*time.Second, "the 400's access record", func() bool {
				b, _ := os.ReadFile(access)
				return bytes.Contains(b, []byte(" 400\n"))
			})
			p.MustCLI("logging", "info")
			sozutest.WaitFor(t, 10*time.Second, "a success's record after `sozu logging info`", func() bool {
				get(t, front, "/after-info")
				b, _ := os.ReadFile(access)
				return bytes.Contains(b, []byte("/after-info 200"))
			})
			// Both workers applied the level; the record of /quiet-success
			// was shipped before the 400's or not at all.
			b, _ := os.ReadFile(access)
			if got := bytes.Contains(b, []byte("/quiet-success 200")); got != dedicated {
				t.Errorf("record of a success under log_level error: %v, want %v:\n%s", got, dedicated, b)
			}
			if !dedicated && !bytes.Contains(b, []byte("ERROR-ACCESS")) {
				t.Errorf("the 400 is not logged at error level:\n%s", b)
			}
		})
	}
}

// rotate renames the access log file to access+suffix as logrotate does,
// has the proxy reopen its logs with reopen, and waits until a GET of path
// on front, sent again while it waits, is logged in a new file at access.
func rotate(t *testing.T, access, suffix string, reopen func(), front, path string) {
	t.Helper()
	if err := os.Rename(access, access+suffix); err != nil {
		t.Fatal(err)
	}
	reopen()
	sozutest.WaitFor(t, 10*time.Second, "a record of "+path+" in the reopened access log", func() bool {
		get(t, front, path)
		b, _ := os.ReadFile(access)
		return strings.Contains(string(b), path)
	})
}

// workerTag is the tag of a worker's ascii access record.
var workerTag = regexp.MustCompile(`\bWRK-\d+\b`)

// TestWorkersWriteTheAccessFile: with a file access target the workers
// append their records to the file themselves (supervisor/accessfile.go):
// a request is logged while the supervisor is stopped (SIGSTOP), and after
// a rotation and a reopen every worker writes the new file and none the
// old one.
func TestWorkersWriteTheAccessFile(t *testing.T) {
	r := startAccessRig(t, func(dir string) string { return fmt.Sprintf("access_logs_target = \"file://%s/logs/access.log\"", dir) })
	p, front, access := r.p, r.front, filepath.Join(r.dir, "logs", "access.log")

	if err := p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			p.Cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	if got := get(t, front, "/while-stopped"); got != "HTTP/1.1 200 OK" {
		t.Fatalf("GET with the supervisor stopped: %s", got)
	}
	sozutest.WaitFor(t, 10*time.Second, "the record of a request served while the supervisor is stopped", func() bool {
		b, _ := os.ReadFile(access)
		return strings.Contains(string(b), " /while-stopped ")
	})
	p.Cmd.Process.Signal(syscall.SIGCONT)
	stopped = false

	// The workers take the new file a moment after the signal: the first
	// record in it says that one did; then every request goes there.
	rotate(t, access, ".1", func() { p.Cmd.Process.Signal(syscall.SIGHUP) }, front, "/probe")
	workers := map[string]bool{}
	sozutest.WaitFor(t, 20*time.Second, "records of both workers in the reopened file", func() bool {
		for i := range 10 {
			get(t, front, fmt.Sprintf("/after-%d", i))
		}
		b, _ := os.ReadFile(access)
		for _, tag := range workerTag.FindAllString(string(b), -1) {
			workers[tag] = true
		}
		return len(workers) >= 2
	})
	// Records the workers had batched before the swap may still land in
	// the old file; none written after both wrote the new one.
	old, _ := os.ReadFile(access + ".1")
	if strings.Contains(string(old), " /after-") {
		t.Errorf("a worker still writes the rotated file:\n%s", old)
	}
}

// TestAccessLogRejectedRequestLine: a request the proxy answers 400 for a
// refused header still shows the parts of its request line that were
// valid, as upstream's records do (doc/observability.md, "The request
// line of a rejected HTTP/1.1 request"): method and path, and an
// authority only when the request line carried it or every header was
// parsed, never a Host taken from a refused head. An absolute-form target
// is recorded by its path, forwarded or rejected.
func TestAccessLogRejectedRequestLine(t *testing.T) {
	accessUDP := listenUDP(t)
	r := startAccessRig(t, func(string) string {
		return fmt.Sprintf("access_logs_target = \"udp://%s\"\naccess_logs_format = \"json\"", accessUDP.addr())
	})
	for _, c := range []struct {
		name, raw     string
		status        float64
		method, path  string
		domain, query any // nil: the field is absent
		port          any
	}{
		{"refused header", "GET /diag-a?x=1 HTTP/1.1\r\nHost: shop.test\r\nBad Header: x\r\n\r\n",
			400, "GET", "/diag-a", nil, "x=***", nil},
		{"absolute-form, refused header", "GET http://example.com:8080/abs-b HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n",
			400, "GET", "/abs-b", "example.com", nil, float64(8080)},
		{"CL.TE", "POST /upload-c HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
			400, "POST", "/upload-c", "shop.test", nil, nil},
		{"two Host fields", "GET /dup-e HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
			400, "GET", "/dup-e", nil, nil, nil},
		{"absolute-form, forwarded", "GET http://shop.test/abs-ok-d?card=" + pan + " HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
			200, "GET", "/abs-ok-d", "shop.test", "card=***", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := rawExchange(t, r.front, []byte(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("HTTP/1.1 %d ", int(c.status)); !strings.HasPrefix(resp, want) {
				t.Fatalf("answer %q, want %s", resp, want)
			}
			rec := accessUDP.record(t, c.path)
			for _, f := range []struct {
				key  string
				want any
			}{
				{"http.response.status_code", c.status},
				{"http.request.method", c.method},
				{"url.path", c.path},
				{"url.domain", c.domain},
				{"url.port", c.port},
				{"url.query", c.query},
			} {
				if got := ecs(rec, f.key); got != f.want {
					t.Errorf("%s = %#v, want %#v in %v", f.key, got, f.want, rec)
				}
			}
		})
	}
}

// TestAccessLogTagsOfUnroutedRequest: a request that never reached a
// frontend (no path of the host's frontends matched, a head refused after
// every field parsed) still shows the tags of the frontend whose hostname
// is exactly its host, as upstream's records do (its exact-authority
// lookup); a host no frontend names exactly shows none.
func TestAccessLogTagsOfUnroutedRequest(t *testing.T) {
	accessUDP := listenUDP(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "sozu.sock")
	front := freeAddr(t)
	origin := okOrigin(t)
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
activate_listeners = true
access_logs_target = "udp://%s"
access_logs_format = "json"

[[listeners]]
protocol = "http"
address = %q

[clusters.app]
protocol = "http"
frontends = [
  { address = %[3]q, hostname = "shop.test", path = "/api", tags = { team = "pay" } },
  { address = %[3]q, hostname = "*.wild.test", path = "/api", tags = { team = "wild" } },
]
backends = [ { address = %[4]q } ]
`, sock, accessUDP.addr(), front, origin.addr)
	startProxy(t, dir, sock, cfg, front)
	for _, c := range []struct {
		name, raw, path string
		status          float64
		team            any
	}{
		{"routed", "GET /api/routed HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n", "/api/routed", 200, "pay"},
		{"no path matched", "GET /elsewhere-a HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n", "/elsewhere-a", 404, "pay"},
		{"host with a port", "GET /elsewhere-b HTTP/1.1\r\nHost: SHOP.test:80\r\nConnection: close\r\n\r\n", "/elsewhere-b", 404, "pay"},
		{"host with a trailing dot", "GET /elsewhere-g HTTP/1.1\r\nHost: shop.test.\r\nConnection: close\r\n\r\n", "/elsewhere-g", 404, "pay"},
		{"CL.TE", "POST /elsewhere-c HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "/elsewhere-c", 400, "pay"},
		{"refused header", "GET /elsewhere-d HTTP/1.1\r\nHost: shop.test\r\nBad Header: x\r\n\r\n", "/elsewhere-d", 400, nil},
		{"wildcard frontend", "GET /elsewhere-e HTTP/1.1\r\nHost: a.wild.test\r\nConnection: close\r\n\r\n", "/elsewhere-e", 404, nil},
		{"unknown host", "GET /elsewhere-f HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n", "/elsewhere-f", 404, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := rawExchange(t, front, []byte(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("HTTP/1.1 %d ", int(c.status)); !strings.HasPrefix(resp, want) {
				t.Fatalf("answer %q, want %s", resp, want)
			}
			rec := accessUDP.record(t, c.path)
			if got := ecs(rec, "labels.team"); got != c.team {
				t.Errorf("labels.team = %#v, want %#v in %v", got, c.team, rec)
			}
		})
	}
}
