package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// Worker lifecycle under faults (issue 20): refusal from the first instant
// of a soft stop, replacement of a hung worker, the soft stop deadline, and
// crash backoff per worker slot.

// startLifecycle starts sozu with two workers, worker_timeout = 1, one HTTP
// listener routing every host to origin, an audit trail in the test's
// directory, and extra global TOML. It returns the proxy, the listener's
// address and the audit log's path.
func startLifecycle(t *testing.T, origin, extra string) (*sozutest.Proxy, string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "audit"), 0o700); err != nil {
		t.Fatal(err)
	}
	auditLog := filepath.Join(dir, "audit", "audit.log")
	addr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 1
activate_listeners = true
audit_logs_target = %q
%s

[[listeners]]
protocol = "http"
address = %q

[clusters.app]
protocol = "http"
frontends = [ { address = %[4]q, hostname = "*" } ]
backends = [ { address = %[5]q } ]
`, sock, auditLog, extra, addr, origin)
	return startProxy(t, dir, sock, cfg, addr), addr, auditLog
}

// workers returns the supervisor's worker table: pid by worker id, and the
// pids whose run state is RUNNING.
func workers(t *testing.T, sock string) (byID map[uint32]int, running map[int]bool) {
	t.Helper()
	c := sozutest.Dial(t, sock)
	defer c.Conn.Close()
	resp := c.MustOK(t, &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	byID, running = map[uint32]int{}, map[int]bool{}
	for _, w := range resp.GetContent().GetWorkers().GetVec() {
		byID[w.GetId()] = int(w.GetPid())
		if w.GetRunState() == command.RunState_RUNNING {
			running[int(w.GetPid())] = true
		}
	}
	return byID, running
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// waitExit waits for the supervisor to exit and returns how long it took
// from start.
func waitExit(t *testing.T, p *sozutest.Proxy, start time.Time, d time.Duration) time.Duration {
	t.Helper()
	select {
	case <-p.Done:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("the supervisor did not exit within %v\n%s", d, p.Out)
		return 0
	}
}

// A soft stop refuses new connections from its first instant: the kernel
// answers RST to the SYN (ECONNREFUSED at once), instead of completing the
// handshake into a backlog nobody accepts from; a request in flight still
// completes.
func TestSoftStopRefusesNewConnectionsAtOnce(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a slow backend: 10 s per request
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow")
	}))
	p, addr, _ := startLifecycle(t, origin.addr, "")
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	inflight := getAsync(addr)
	sozutest.WaitFor(t, 10*time.Second, "the request reaches the backend", func() bool { return origin.conns.Load() > 0 })

	stopped := make(chan string, 1)
	go func() {
		out, errOut, code := p.CLI("-t", "60000", "shutdown")
		stopped <- fmt.Sprintf("exit %d: %s%s", code, out, errOut)
	}()
	// The soft stop has begun once a worker closed the idle keep-alive
	// connection.
	idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle connection during a soft stop: %d bytes, %v", n, err)
	}
	time.Sleep(time.Second) // the scenario: a client arriving 1 s into the drain
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	took := time.Since(start)
	if err == nil {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, rerr := c.Read(make([]byte, 1))
		c.Close()
		t.Fatalf("a new connection during the soft stop was accepted by the kernel (then read %d bytes, %v after %v)", n, rerr, time.Since(start))
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("new connection during the soft stop: %v, want connection refused", err)
	}
	if took > 100*time.Millisecond {
		t.Fatalf("connection refused after %v, want within 100ms", took)
	}
	r := <-inflight
	if r.err != nil || r.status != 200 || r.body != "slow" {
		t.Fatalf("in-flight request: %+v, want 200 \"slow\"", r)
	}
	if s := <-stopped; !strings.HasPrefix(s, "exit 0") {
		t.Fatalf("shutdown: %s", s)
	}
	waitExit(t, p, start, 20*time.Second)
}

// loadLoop sends requests on fresh connections until stop is closed,
// counting the answers by outcome. Each request is bounded by a timeout.
// failedSince counts the failures of requests started after mark.
type loadLoop struct {
	ok, failed, failedSince atomic.Int64
	since                   atomic.Int64 // unix ns of the mark; 0: none
	stop                    chan struct{}
	wg                      sync.WaitGroup
}

// mark starts counting failedSince from now.
func (l *loadLoop) mark() { l.since.Store(time.Now().UnixNano()) }

func startLoad(addr string, clients int) *loadLoop {
	l := &loadLoop{stop: make(chan struct{})}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				started := time.Now().UnixNano()
				resp, err := c.Get("http://" + addr + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == 200 {
					l.ok.Add(1)
				} else {
					l.failed.Add(1)
					if s := l.since.Load(); s != 0 && started > s {
						l.failedSince.Add(1)
					}
				}
			}
		}()
	}
	return l
}

func (l *loadLoop) halt() { close(l.stop); l.wg.Wait() }

// A worker stopped with SIGSTOP under load is replaced within the
// documented bound (4 × worker_timeout after it stops answering): a new
// pid is RUNNING, requests succeed, and a soft stop afterwards ends within
// its deadline.
func TestHungWorkerIsReplaced(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	p, addr, auditLog := startLifecycle(t, origin.addr, "soft_stop_deadline = 5")
	load := startLoad(addr, 4)
	defer load.halt()
	sozutest.WaitFor(t, 10*time.Second, "the load gets answers", func() bool { return load.ok.Load() > 20 })

	before, _ := workers(t, p.Sock)
	if len(before) != 2 {
		t.Fatalf("workers at start: %v", before)
	}
	var hungID uint32
	var hung int
	for id, pid := range before {
		if hung == 0 || id < hungID {
			hungID, hung = id, pid
		}
	}
	if err := syscall.Kill(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(hung, syscall.SIGKILL)
	stoppedAt := time.Now()
	// worker_timeout = 1: the bound is 4 s; status itself may take 1 s.
	var replaced time.Duration
	sozutest.WaitFor(t, 8*time.Second, "the hung worker replaced by a new RUNNING one", func() bool {
		byID, running := workers(t, p.Sock)
		if _, still := byID[hungID]; still || len(running) != 2 {
			return false
		}
		for _, pid := range byID {
			if pid == hung {
				return false
			}
		}
		replaced = time.Since(stoppedAt)
		return true
	})
	t.Logf("hung worker %d (pid %d) replaced %v after SIGSTOP", hungID, hung, replaced)
	if replaced > 6*time.Second {
		t.Fatalf("hung worker replaced after %v, want within 4 × worker_timeout (+ one status round)", replaced)
	}
	if alive(hung) {
		t.Fatalf("the hung worker (pid %d) is still alive after its replacement", hung)
	}
	// Later requests succeed (those in flight on the hung worker when it
	// was killed may fail: they are not counted).
	load.mark()
	okBefore := load.ok.Load()
	sozutest.WaitFor(t, 10*time.Second, "50 more answers", func() bool { return load.ok.Load() >= okBefore+50 })
	if f := load.failedSince.Load(); f != 0 {
		t.Fatalf("%d requests started after the replacement failed", f)
	}
	load.halt()
	load.stop = make(chan struct{}) // the deferred halt closes this one
	audit, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), fmt.Sprintf("worker %d (pid %d) did not answer", hungID, hung)) {
		t.Fatalf("no audit record of the hung worker's replacement:\n%s", audit)
	}
	start := time.Now()
	if out, errOut, code := p.CLI("-t", "30000", "shutdown"); code != 0 {
		t.Fatalf("shutdown: exit %d %s%s", code, out, errOut)
	}
	if d := waitExit(t, p, start, 10*time.Second); d > 6*time.Second {
		t.Fatalf("soft stop took %v, past its 5 s deadline", d)
	}
}

// At soft_stop_deadline the connections still open are closed, the
// process exits, and an audit record names what was cut.
func TestSoftStopDeadlineCutsWhatRemains(t *testing.T) {
	origin, arrived, release := blockingOrigin(t)
	defer close(release)
	p, addr, auditLog := startLifecycle(t, origin.addr, "soft_stop_deadline = 2")
	inflight := getAsync(addr)
	<-arrived
	start := time.Now()
	out, errOut, code := p.CLI("-t", "30000", "shutdown")
	if code != 0 {
		t.Fatalf("shutdown: exit %d %s%s", code, out, errOut)
	}
	d := waitExit(t, p, start, 10*time.Second)
	if d < 2*time.Second || d > 6*time.Second { // a loaded machine adds to the 2 s; without the deadline it never ends
		t.Fatalf("soft stop with a request held forever took %v, want its 2 s deadline", d)
	}
	if r := <-inflight; r.err == nil {
		t.Fatalf("the request held past the deadline was not cut: %+v", r)
	}
	audit, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), "soft stop deadline (2s) reached") || !strings.Contains(string(audit), "1 open connection") {
		t.Fatalf("no audit record naming what the deadline cut:\n%s", audit)
	}
}

// A crash loop on one worker slot delays only that slot: the other slot,
// crashing once meanwhile, is relaunched at once, so a worker is always
// running.
func TestCrashLoopBacksOffPerSlot(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	p, _, _ := startLifecycle(t, origin.addr, "")
	byID, _ := workers(t, p.Sock)
	if len(byID) != 2 {
		t.Fatalf("workers at start: %v", byID)
	}
	var ids []uint32
	for id := range byID {
		ids = append(ids, id)
	}
	if ids[0] > ids[1] {
		ids[0], ids[1] = ids[1], ids[0]
	}
	loopID, otherID := ids[0], ids[1]
	seen := map[uint32]bool{ids[0]: true, ids[1]: true}
	// newWorker waits for a worker id not seen yet and returns it.
	newWorker := func(what string, d time.Duration) (uint32, int) {
		var id uint32
		var pid int
		sozutest.WaitFor(t, d, what, func() bool {
			byID, running := workers(t, p.Sock)
			for i, pp := range byID {
				if !seen[i] && running[pp] {
					id, pid = i, pp
					return true
				}
			}
			return false
		})
		seen[id] = true
		return id, pid
	}
	// The crash loop: the loop slot's worker is killed as soon as it runs.
	loopPID := byID[loopID]
	for i := range 4 {
		if err := syscall.Kill(loopPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		loopID, loopPID = newWorker(fmt.Sprintf("relaunch %d of the crash-looping slot", i+1), 15*time.Second)
	}
	// The loop slot crashes once more and backs off; the other slot's
	// worker (young: less than 5 s old) crashes once. The other slot is
	// relaunched at once, and from then on a worker is always running
	// until the loop slot is back.
	syscall.Kill(loopPID, syscall.SIGKILL)
	crashed := time.Now()
	if err := syscall.Kill(byID[otherID], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var firstBack time.Duration
	polls, empty := 0, 0
	sozutest.WaitFor(t, 15*time.Second, "both slots relaunched", func() bool {
		byID, running := workers(t, p.Sock)
		fresh, live := 0, 0
		for id, pid := range byID {
			if !seen[id] {
				fresh++
				if running[pid] && alive(pid) {
					live++
				}
			}
		}
		if live > 0 && firstBack == 0 {
			firstBack = time.Since(crashed)
		}
		if firstBack > 0 {
			polls++
			if live == 0 {
				empty++
			}
		}
		return fresh == 2
	})
	if firstBack > 500*time.Millisecond {
		t.Fatalf("no worker ran for %v after the crashes: the other slot backed off for the crash loop of another slot", firstBack)
	}
	if empty > 0 {
		t.Fatalf("%d of %d polls showed no running worker while the crash-looping slot backed off", empty, polls)
	}
}

// Deactivating a listener makes the kernel refuse its new connections at
// once, even while a hung worker still holds a copy of the socket: the
// supervisor shuts the socket itself instead of closing its descriptor.
func TestDeactivatedListenerRefusesDespiteHungWorker(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	p, addr, _ := startLifecycle(t, origin.addr, "")
	byID, _ := workers(t, p.Sock)
	var hung int
	for _, pid := range byID {
		hung = pid
		break
	}
	if err := syscall.Kill(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(hung, syscall.SIGKILL)
	sa, err := command.ParseSocketAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	c := sozutest.Dial(t, p.Sock)
	// The hung worker does not answer within worker_timeout: the verb
	// reports it; the listener is deactivated all the same.
	c.Do(t, &command.Request{RequestType: &command.Request_DeactivateListener{DeactivateListener: &command.DeactivateListener{
		Address: sa, Proxy: command.ListenerType_HTTP.Enum(), ToScm: proto.Bool(false)}}})
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("a new connection to the deactivated listener was accepted by the kernel")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("new connection to the deactivated listener: %v after %v, want connection refused at once", err, time.Since(start))
	}
}

// TestNoAutomaticRestart: worker_automatic_restart = false (upstream's key,
// default true) leaves a dead worker's slot empty; true relaunches it. A
// relaunch at once (a first crash) is made in the same turn of the
// supervisor as the dead worker's removal, so once the status no longer
// lists the dead worker, a relaunch would be listed already.
func TestNoAutomaticRestart(t *testing.T) {
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprint("worker_automatic_restart=", restart), func(t *testing.T) {
			p, _, _ := startLifecycle(t, origin.addr, fmt.Sprintf("worker_automatic_restart = %t", restart))
			byID, _ := workers(t, p.Sock)
			if len(byID) != 2 {
				t.Fatalf("workers at start: %v", byID)
			}
			var victim uint32
			for id := range byID {
				victim = id
			}
			if err := syscall.Kill(byID[victim], syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			var after map[uint32]int
			sozutest.WaitFor(t, 10*time.Second, "the killed worker leaves the status", func() bool {
				after, _ = workers(t, p.Sock)
				_, listed := after[victim]
				return !listed
			})
			want := 1
			if restart {
				want = 2
			}
			if len(after) != want {
				t.Fatalf("workers after the kill: %v, want %d", after, want)
			}
		})
	}
}
