package e2e

import (
	"bufio"
	"bytes"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// upgradeRig is a proxy started from a private copy of the sozu binary
// (so that a test may replace the file on disk), with a PID file and a
// JSON audit trail.
type upgradeRig struct {
	p       *sozutest.Proxy
	dir     string
	bin     string // the binary the supervisor runs, dir/bin/sozu
	pidFile string
	audit   string
	key     string
	front   string // HTTP listener
	tcp     string // TCP listener, relayed to an echo origin
}

// startUpgradeRig starts the rig with 2 workers; routes: host ws.test to a
// WebSocket echo origin, any other host to origin, the TCP listener to an
// echo origin.
func startUpgradeRig(t *testing.T, origin string, extra string) *upgradeRig {
	t.Helper()
	dir := t.TempDir()
	r := &upgradeRig{dir: dir, bin: filepath.Join(dir, "bin", "sozu"), pidFile: filepath.Join(dir, "run", "sozu.pid"),
		audit: filepath.Join(dir, "audit", "audit.jsonl"), key: filepath.Join(dir, "audit", "audit.key"),
		front: fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)), tcp: fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))}
	for _, d := range []string{filepath.Dir(r.bin), filepath.Dir(r.pidFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, sozutest.Bin, r.bin, 0o755)
	ws := startRawOrigin(t, wsEcho)
	echo := startRawOrigin(t, tcpEcho)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %[1]q
worker_count = 2
worker_timeout = 5
log_level = "info"
activate_listeners = true
pid_file_path = %[2]q
audit_logs_json_target = %[3]q
audit_hmac_key_file = %[4]q

[[listeners]]
protocol = "http"
address = %[5]q

[[listeners]]
protocol = "tcp"
address = %[6]q

[clusters.app]
protocol = "http"
frontends = [ { address = %[5]q, hostname = "*" } ]
backends = [ { address = %[7]q } ]

[clusters.ws]
protocol = "http"
frontends = [ { address = %[5]q, hostname = "ws.test" } ]
backends = [ { address = %[8]q } ]

[clusters.echo]
protocol = "tcp"
frontends = [ { address = %[6]q } ]
backends = [ { address = %[9]q } ]
`, sock, r.pidFile, r.audit, r.key, r.front, r.tcp, origin, ws.addr, echo.addr)
	// extra goes among the globals: spliced in before the listeners.
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(strings.Replace(cfg, "\n\n[[listeners]]", "\n"+extra+"\n\n[[listeners]]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.p = sozutest.StartWith(t, dir, path, sock, func(cmd *exec.Cmd) {
		cmd.Path, cmd.Args[0] = r.bin, r.bin
	})
	waitListening(t, r.front, r.tcp)
	return r
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// pid reads the PID file; 0 when absent.
func (r *upgradeRig) pid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(r.pidFile)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("PID file %s: %q", r.pidFile, b)
	}
	return n
}

// verify runs `sozu audit verify` over the trail.
func (r *upgradeRig) verify(t *testing.T) string {
	t.Helper()
	out, errOut, code := r.p.CLI("audit", "verify", r.audit, "--key", r.key)
	if code != 0 {
		t.Fatalf("audit verify: exit %d\n%s\n%s", code, out, errOut)
	}
	return out
}

// records returns the JSON audit lines whose text contains every of want.
func (r *upgradeRig) records(t *testing.T, want ...string) []string {
	t.Helper()
	b, err := os.ReadFile(r.audit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
lines:
	for _, l := range strings.Split(string(b), "\n") {
		for _, w := range want {
			if !strings.Contains(l, w) {
				continue lines
			}
		}
		out = append(out, l)
	}
	return out
}

// parentOf reads the PPid of pid; 0 when pid is gone.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// gone reports whether pid no longer runs (absent, or a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// workersOf returns the ids and pids of the RUNNING workers. It closes its
// command session at once: polled in a wait, sessions left open until the
// test ends would reach command_max_sessions_per_uid.
func workersOf(t *testing.T, sock string) (ids []uint32, pids []int) {
	t.Helper()
	c := sozutest.Dial(t, sock)
	defer c.Conn.Close()
	resp := c.MustOK(t, &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	for _, w := range resp.GetContent().GetWorkers().GetVec() {
		if w.GetRunState() == command.RunState_RUNNING {
			ids, pids = append(ids, w.GetId()), append(pids, int(w.GetPid()))
		}
	}
	return ids, pids
}

// echoConn is a long-lived connection through the proxy that echoes.
type echoConn struct {
	name string
	c    net.Conn
	br   *bufio.Reader
	ws   bool
}

func openWS(t *testing.T, front string) *echoConn {
	t.Helper()
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("WebSocket handshake: %d", resp.StatusCode)
	}
	return &echoConn{name: "websocket", c: c, br: br, ws: true}
}

func openTCP(t *testing.T, addr string) *echoConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &echoConn{name: "tcp relay", c: c, br: bufio.NewReader(c)}
}

// echo sends msg and fails the test unless it comes back.
func (e *echoConn) echo(t *testing.T, msg string) {
	t.Helper()
	e.c.SetDeadline(time.Now().Add(10 * time.Second))
	if e.ws {
		if _, err := e.c.Write(wsFrame(1, []byte(msg), []byte{9, 8, 7, 6})); err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		op, got, err := readFrame(e.br)
		if err != nil || op != 1 || string(got) != msg {
			t.Fatalf("%s echo of %q: op %d %q %v", e.name, msg, op, got, err)
		}
		return
	}
	if _, err := io.WriteString(e.c, msg+"\n"); err != nil {
		t.Fatalf("%s: %v", e.name, err)
	}
	got, err := e.br.ReadString('\n')
	if err != nil || got != msg+"\n" {
		t.Fatalf("%s echo of %q: %q %v", e.name, msg, got, err)
	}
}

// startWrk runs wrk with 20 keep-alive connections against url until
// stop is called, which returns its report.
func startWrk(t *testing.T, url string) (stop func() string) {
	t.Helper()
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatal("wrk is not installed: `make deps` installs it")
	}
	var out bytes.Buffer
	cmd := exec.Command(wrk, "-t2", "-c20", "-d300s", url)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-done
		}
	})
	return func() string {
		cmd.Process.Signal(syscall.SIGINT) // wrk prints its summary when interrupted
		select {
		case <-done:
			stopped = true
		case <-time.After(20 * time.Second):
			t.Fatalf("wrk did not stop on SIGINT:\n%s", out.String())
		}
		return out.String()
	}
}

// TestUpgradeUnderLoad runs wrk (20 keep-alive connections, 2 workers)
// through a main upgrade, an upgrade of each worker and a second main
// upgrade: wrk sees no socket error and no non-2xx answer; the PID file
// names each new supervisor, the old one exits, and the workers end up as
// children of the new one; a WebSocket and a TCP relay opened before the
// main upgrade, and another pair opened before the worker upgrades, still
// echo after them; `sozu audit verify` passes over the trail, which holds
// the records of both upgrades; the PID file is removed at the final stop.
func TestUpgradeUnderLoad(t *testing.T) {
	var served atomic.Int64
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprint(w, "ok")
	}))
	r := startUpgradeRig(t, origin.addr, "")
	first := r.pid(t)
	if first != r.p.Cmd.Process.Pid {
		t.Fatalf("PID file names %d, the supervisor is %d", first, r.p.Cmd.Process.Pid)
	}
	ws1, tcp1 := openWS(t, r.front), openTCP(t, r.tcp)
	ws1.echo(t, "ws1 before")
	tcp1.echo(t, "tcp1 before")

	const minLoad = 15 * time.Second
	loadStart := time.Now()
	stopWrk := startWrk(t, "http://"+r.front+"/")
	const each = 300
	mark := func(what string) {
		t.Helper()
		n := served.Load()
		sozutest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d requests %s", each, what), func() bool { return served.Load() >= n+each })
	}
	mark("before the main upgrade")

	mainUpgrade := func(old int) int {
		t.Helper()
		out := r.p.MustCLI("upgrade")
		if !strings.Contains(out, "took over") {
			t.Fatalf("upgrade answered %q", out)
		}
		nu := r.pid(t)
		if nu == old || nu == 0 || !strings.Contains(out, fmt.Sprintf("pid %d took over from pid %d", nu, old)) {
			t.Fatalf("after the upgrade the PID file names %d (old %d); answer %q", nu, old, out)
		}
		sozutest.WaitFor(t, 20*time.Second, fmt.Sprintf("the old supervisor %d exits", old), func() bool { return gone(old) })
		// The inherited workers are upgraded one by one: both end up
		// children of the new supervisor.
		sozutest.WaitFor(t, 60*time.Second, "the workers are children of the new supervisor", func() bool {
			_, pids := workersOf(t, r.p.Sock)
			if len(pids) != 2 {
				return false
			}
			for _, p := range pids {
				if parentOf(p) != nu {
					return false
				}
			}
			return true
		})
		return nu
	}
	second := mainUpgrade(first)
	mark("after the main upgrade")
	ws1.echo(t, "ws1 after the main upgrade")
	tcp1.echo(t, "tcp1 after the main upgrade")

	ws2, tcp2 := openWS(t, r.front), openTCP(t, r.tcp)
	ws2.echo(t, "ws2 before")
	tcp2.echo(t, "tcp2 before")
	evs := subscribeEvents(t, r.p.Sock)
	ids := upgradeEachWorker(t, r, mark)
	for _, e := range []*echoConn{ws1, tcp1, ws2, tcp2} {
		e.echo(t, e.name+" after the worker upgrades")
	}
	for _, phase := range []string{"upgrade started", "upgrade finished"} {
		sozutest.WaitFor(t, 10*time.Second, "WORKER_UPGRADED events: "+phase, func() bool {
			return evs.count(command.EventKind_WORKER_UPGRADED, phase, "") == len(ids)
		})
	}
	status := r.p.MustCLI("status")
	if !strings.Contains(status, "last main process upgrade finished") || !strings.Contains(status, "last worker upgrade finished") {
		t.Errorf("status does not show the upgrades:\n%s", status)
	}

	mainEvs := subscribeEvents(t, r.p.Sock) // on the supervisor about to hand over
	third := mainUpgrade(second)
	for _, phase := range []string{"upgrade started", "upgrade finished"} {
		if n := mainEvs.count(command.EventKind_MAIN_UPGRADED, phase, ""); n != 1 {
			t.Errorf("%d MAIN_UPGRADED events %q, want 1", n, phase)
		}
	}
	mark("after the second main upgrade")
	// The load runs at least minLoad in all (wrk -c 20 -d 15s), even when
	// the upgrades were quicker.
	if rest := minLoad - time.Since(loadStart); rest > 0 {
		<-time.After(rest)
	}
	report := stopWrk()
	t.Logf("wrk:\n%s", report)
	if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(report); m == nil {
		t.Errorf("no request count in wrk's report")
	}
	for _, bad := range []string{"Socket errors", "Non-2xx or 3xx responses"} {
		if strings.Contains(report, bad) {
			t.Errorf("wrk reports %s", bad)
		}
	}
	for _, e := range []*echoConn{ws1, tcp1, ws2, tcp2} {
		e.echo(t, e.name+" at the end")
		e.c.Close()
	}

	r.p.MustCLI("shutdown")
	select {
	case <-r.p.Done: // every holder of its output is gone: supervisors and workers
	case <-time.After(60 * time.Second):
		t.Fatal("the proxy did not stop")
	}
	// Its descriptors close (ending the output) just before it becomes a
	// zombie: wait for that, briefly.
	sozutest.WaitFor(t, 5*time.Second, fmt.Sprintf("supervisor %d gone after shutdown", third), func() bool { return gone(third) })
	if n := r.pid(t); n != 0 {
		t.Errorf("the PID file still names %d after a clean stop", n)
	}
	out := r.verify(t)
	t.Logf("audit verify: %s", out)
	if n := len(r.records(t, `"code":"SZ2002"`, `"result":"ok"`, "hands over to pid")); n != 2 {
		t.Errorf("%d hand-over records, want 2", n)
	}
	if n := len(r.records(t, `"code":"SZ2002"`, `"result":"ok"`, "took over from pid")); n < 2 {
		t.Errorf("%d take-over records, want at least 2", n)
	}
}

// TestUpgradeFailingBinary replaces the binary on disk with ones that must
// not take over: a group-writable file (refused before it runs), a script
// that exits at once, and one that never confirms. Each time the old
// supervisor stays in charge and keeps serving and answering, the PID file
// still names it, and the failure is audited; then the real binary is put
// back and the upgrade succeeds, and `sozu audit verify` passes.
func TestUpgradeFailingBinary(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	r := startUpgradeRig(t, origin.addr, "")
	old := r.pid(t)
	real := filepath.Join(r.dir, "sozu.real")
	copyFile(t, r.bin, real, 0o755)

	serving := func(when string) {
		t.Helper()
		if got := curl(t, "http://"+r.front+"/"); got != "ok" {
			t.Fatalf("%s: HTTP answered %q", when, got)
		}
		if ids, _ := workersOf(t, r.p.Sock); len(ids) != 2 {
			t.Fatalf("%s: %d workers running", when, len(ids))
		}
		if !r.p.Alive() || r.pid(t) != old {
			t.Fatalf("%s: the supervisor %d is gone or the PID file names %d", when, old, r.pid(t))
		}
	}
	cases := []struct {
		name    string
		install func()
		want    string
	}{
		{"group-writable binary", func() { copyFile(t, real, r.bin, 0o775) }, "writable by its group or others"},
		{"binary that exits at once", func() {
			copyFile(t, writeTemp(t, r.dir, "#!/bin/sh\nexit 3\n"), r.bin, 0o755)
		}, "exit status 3"},
		{"binary that never confirms", func() {
			copyFile(t, writeTemp(t, r.dir, "#!/bin/sh\nexec sleep 120\n"), r.bin, 0o755)
		}, "no answer within"},
	}
	evs := subscribeEvents(t, r.p.Sock)
	for i, tc := range cases {
		tc.install()
		out, errOut, code := r.p.CLI("upgrade")
		if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, fmt.Sprintf("pid %d stays in charge", old)) {
			t.Fatalf("%s: upgrade exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.name, code, out, errOut, tc.want)
		}
		serving("after a failed upgrade (" + tc.name + ")")
		sozutest.WaitFor(t, 10*time.Second, "MAIN_UPGRADED events: upgrade failed", func() bool {
			return evs.count(command.EventKind_MAIN_UPGRADED, "upgrade failed", "") == i+1
		})
		if n := len(r.records(t, `"code":"SZ2002"`, `"result":"err"`, tc.want)); n != 1 {
			t.Errorf("%s: %d failed supervisor.upgrade records naming %q, want 1", tc.name, n, tc.want)
		}
	}
	// A mutation still reaches both workers (their channels were resumed).
	r.p.MustCLI("backend", "add", "--id", "app", "--backend-id", "b2", "--address", origin.addr)

	copyFile(t, real, r.bin, 0o755)
	out := r.p.MustCLI("upgrade")
	if !strings.Contains(out, "took over") || r.pid(t) == old {
		t.Fatalf("upgrade with the real binary: %q, PID file %d", out, r.pid(t))
	}
	if got := curl(t, "http://"+r.front+"/"); got != "ok" {
		t.Fatalf("after the upgrade: %q", got)
	}
	r.p.MustCLI("shutdown", "--hard")
	select {
	case <-r.p.Done:
	case <-time.After(60 * time.Second):
		t.Fatal("the proxy did not stop")
	}
	r.verify(t)
}

func writeTemp(t *testing.T, dir, content string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "script-")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(content)
	f.Close()
	return f.Name()
}

// TestWorkersDieWithTheirSupervisor: workers have no parent-death signal
// (they must outlive the supervisor that hands them over in an upgrade),
// so a supervisor killed outright must still take them down: each worker
// exits when its channel reaches EOF, which happens once no supervisor
// holds the other end. Checked for the first supervisor, and for its
// successor after a main upgrade.
func TestWorkersDieWithTheirSupervisor(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	for _, upgraded := range []bool{false, true} {
		r := startUpgradeRig(t, origin.addr, "")
		sup := r.pid(t)
		if upgraded {
			r.p.MustCLI("upgrade")
			sozutest.WaitFor(t, 60*time.Second, "the workers are children of the new supervisor", func() bool {
				sup = r.pid(t)
				_, pids := workersOf(t, r.p.Sock)
				return len(pids) == 2 && parentOf(pids[0]) == sup && parentOf(pids[1]) == sup
			})
		}
		_, pids := workersOf(t, r.p.Sock)
		if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		sozutest.WaitFor(t, 20*time.Second, fmt.Sprintf("workers %v exit after their supervisor %d was killed (upgraded: %v)", pids, sup, upgraded), func() bool {
			return gone(pids[0]) && gone(pids[1])
		})
		select {
		case <-r.p.Done:
		case <-time.After(20 * time.Second):
			t.Fatal("a process still holds the proxy's output")
		}
	}
}

// TestUpgradeNotifiesSystemd: under systemd (NOTIFY_SOCKET set), the
// supervisor that hands over names its successor as the unit's main
// process (MAINPID=<new pid>) before it exits.
func TestUpgradeNotifiesSystemd(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	notify := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := ln.ReadFromUnix(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	t.Setenv("NOTIFY_SOCKET", notify) // the supervisor inherits the test's environment
	r := startUpgradeRig(t, origin.addr, "")
	r.p.MustCLI("upgrade")
	want := fmt.Sprintf("MAINPID=%d", r.pid(t))
	deadline := time.After(20 * time.Second)
	for {
		select {
		case msg := <-got:
			for _, line := range strings.Split(msg, "\n") {
				if line == want {
					r.p.MustCLI("shutdown", "--hard")
					<-r.p.Done
					return
				}
			}
		case <-deadline:
			t.Fatalf("no %s datagram on NOTIFY_SOCKET", want)
		}
	}
}

// TestInheritedWorkerCrashIsDetected: right after a main upgrade the
// workers are not the new supervisor's children, so it cannot wait(2) for
// them; it watches their pidfd. An inherited worker killed then is noticed
// (a worker.exit record naming its pid) and its slot is served again: two
// running workers, both children of the new supervisor.
func TestInheritedWorkerCrashIsDetected(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	r := startUpgradeRig(t, origin.addr, "")
	_, pids := workersOf(t, r.p.Sock)
	victim := pids[len(pids)-1] // upgraded last: still inherited for a while
	r.p.MustCLI("upgrade")
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sup := r.pid(t)
	sozutest.WaitFor(t, 60*time.Second, "two workers, children of the new supervisor", func() bool {
		_, now := workersOf(t, r.p.Sock)
		return len(now) == 2 && parentOf(now[0]) == sup && parentOf(now[1]) == sup
	})
	sozutest.WaitFor(t, 20*time.Second, fmt.Sprintf("a worker.exit record naming pid %d", victim), func() bool {
		return len(r.records(t, `"verb":"worker.exit"`, fmt.Sprintf("(pid %d)", victim))) > 0
	})
	for _, rec := range r.records(t, `"verb":"worker.exit"`, fmt.Sprintf("(pid %d)", victim)) {
		t.Logf("record: %.400s", rec)
	}
	if got := curl(t, "http://"+r.front+"/"); got != "ok" {
		t.Fatalf("HTTP answered %q", got)
	}
	r.p.MustCLI("shutdown", "--hard")
	<-r.p.Done
	r.verify(t)
}

// upgradeEachWorker runs `sozu upgrade --worker N` for every running
// worker, calling mark after each, and checks that none of the old pids
// still serves. It returns the ids of the workers it upgraded.
func upgradeEachWorker(t *testing.T, r *upgradeRig, mark func(string)) []uint32 {
	t.Helper()
	ids, pids := workersOf(t, r.p.Sock)
	for _, id := range ids {
		out := r.p.MustCLI("upgrade", "--worker", strconv.Itoa(int(id)))
		if !strings.Contains(out, fmt.Sprintf("worker %d (pid", id)) || !strings.Contains(out, "drains") {
			t.Fatalf("upgrade --worker %d answered %q", id, out)
		}
		mark(fmt.Sprintf("after the upgrade of worker %d", id))
	}
	_, newPIDs := workersOf(t, r.p.Sock)
	for _, p := range pids {
		for _, q := range newPIDs {
			if p == q {
				t.Fatalf("worker pid %d still serves after its upgrade (before %v, after %v)", p, pids, newPIDs)
			}
		}
	}
	return ids
}

// TestUpgradeKeepsMetricsDisabled: `metrics disable` (cluster metrics
// off) survives a main upgrade: a worker the new supervisor launches
// after it records no cluster metrics either.
func TestUpgradeKeepsMetricsDisabled(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	r := startUpgradeRig(t, origin.addr, "")
	r.p.MustCLI("metrics", "disable")
	r.p.MustCLI("metrics", "clear") // what the clusters recorded before: gone, so not shown
	_, pids := workersOf(t, r.p.Sock)
	r.p.MustCLI("upgrade")
	sup := r.pid(t)
	for _, victim := range pids { // both replaced by workers of the new supervisor
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	sozutest.WaitFor(t, 60*time.Second, "two workers, children of the new supervisor", func() bool {
		_, now := workersOf(t, r.p.Sock)
		return len(now) == 2 && parentOf(now[0]) == sup && parentOf(now[1]) == sup
	})
	for range 6 {
		getNew(t, "http://"+r.front+"/")
	}
	var am *command.AggregatedMetrics
	sozutest.WaitFor(t, 10*time.Second, "the requests recorded", func() bool {
		am = queryMetrics(t, r.p.Sock, nil)
		return countOf(am.GetProxying(), pm.HTTPRequests) >= 6
	})
	if len(am.GetClusters()) != 0 {
		t.Errorf("cluster metrics recorded after the upgrade: %v", am.GetClusters())
	}
	r.p.MustCLI("shutdown", "--hard")
	<-r.p.Done
}
