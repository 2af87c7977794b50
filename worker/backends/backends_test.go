package backends

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/deadline"
)

// server is a loopback listener that accepts and holds connections.
type server struct {
	ln    net.Listener
	addr  netip.AddrPort
	mu    sync.Mutex
	conns int
}

func listen(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, addr: netip.MustParseAddrPort(ln.Addr().String())}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			t.Cleanup(func() { c.Close() })
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return a
}

type events struct {
	mu  sync.Mutex
	evs []string
}

func (e *events) add(ev *command.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := ev.GetKind().String() + " " + ev.GetClusterId()
	if ev.BackendId != nil {
		s += "/" + ev.GetBackendId()
	}
	e.evs = append(e.evs, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.evs...)
}

func connect(t *testing.T, s *Set, fresh bool) *Conn {
	t.Helper()
	c, err := s.Connect(context.Background(), time.Second, fresh, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundRobin(t *testing.T) {
	a, b, c := listen(t), listen(t), listen(t)
	r := NewRegistry(Options{})
	sets := r.Update([]Spec{
		{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 100},
		{ClusterID: "c", ID: "b", Addr: b.addr, Weight: 100},
		{ClusterID: "c", ID: "c", Addr: c.addr, Weight: 100},
	}, nil)
	var got []string
	for i := 0; i < 6; i++ {
		conn := connect(t, sets["c"], false)
		got = append(got, conn.Backend.ID)
		conn.Release(false)
	}
	if want := "[a b c a b c]"; sprint(got) != want {
		t.Fatalf("round robin picked %v, want %v", got, want)
	}
}

// TestRoundRobinSkipsDownEvenly: the backends still up share the turns of
// one marked down evenly, not its successor alone.
func TestRoundRobinSkipsDownEvenly(t *testing.T) {
	a, b := listen(t), listen(t)
	r := NewRegistry(Options{MaxFailures: 1})
	sets := r.Update([]Spec{
		{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 100},
		{ClusterID: "c", ID: "dead", Addr: deadAddr(t), Weight: 100},
		{ClusterID: "c", ID: "b", Addr: b.addr, Weight: 100},
	}, nil)
	seen := map[string]int{}
	for range 31 {
		conn := connect(t, sets["c"], true)
		seen[conn.Backend.ID]++
		conn.Release(false)
	}
	if seen["a"] < 15 || seen["b"] < 15 {
		t.Fatalf("with one backend down: %v", seen)
	}
}

// TestDownBackendRetried: a backend marked down is tried again one second
// after its failure, then after 2 s, 4 s...; once it answers it is up and
// gets its turns again.
func TestDownBackendRetried(t *testing.T) {
	a, revived := listen(t), listen(t)
	dead := deadAddr(t)
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	alive := false
	dials := 0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := NewRegistry(Options{MaxFailures: 1, Now: clock, Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		if addr == dead.String() {
			mu.Lock()
			dials++
			up := alive
			mu.Unlock()
			if up {
				addr = revived.addr.String()
			}
		}
		return d.DialContext(ctx, "tcp", addr)
	}})
	set := r.Update([]Spec{
		{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 100},
		{ClusterID: "c", ID: "x", Addr: dead, Weight: 100},
	}, nil)["c"]
	run := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			c := connect(t, set, true)
			seen[c.Backend.ID]++
			c.Release(false)
		}
		return seen
	}
	deadDials := func() int { mu.Lock(); defer mu.Unlock(); return dials }
	run(4)
	if deadDials() != 1 || !set.Backends()[1].Down() {
		t.Fatalf("%d dials to the dead backend, down %v", deadDials(), set.Backends()[1].Down())
	}
	advance(999 * time.Millisecond)
	if run(6); deadDials() != 1 {
		t.Fatalf("retried before 1 s: %d dials", deadDials())
	}
	advance(time.Millisecond)
	if run(6); deadDials() != 2 {
		t.Fatalf("after 1 s: %d dials, want one retry", deadDials())
	}
	advance(1999 * time.Millisecond) // the next wait is 2 s
	if run(6); deadDials() != 2 {
		t.Fatalf("retried before 2 s: %d dials", deadDials())
	}
	advance(time.Millisecond)
	mu.Lock()
	alive = true
	mu.Unlock()
	run(2)
	if set.Backends()[1].Down() {
		t.Fatal("still down after a successful connection")
	}
	if seen := run(10); seen["a"] != 5 || seen["x"] != 5 {
		t.Fatalf("after its recovery: %v", seen)
	}
}

func sprint(l []string) string {
	s := "["
	for i, x := range l {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s + "]"
}

func TestWeightedRandom(t *testing.T) {
	r := NewRegistry(Options{})
	sets := r.Update([]Spec{
		{ClusterID: "c", ID: "light", Addr: netip.MustParseAddrPort("127.0.0.1:1"), Weight: 1},
		{ClusterID: "c", ID: "heavy", Addr: netip.MustParseAddrPort("127.0.0.1:2"), Weight: 3},
		{ClusterID: "c", ID: "never", Addr: netip.MustParseAddrPort("127.0.0.1:3"), Weight: 0},
	}, map[string]Policy{"c": {Algorithm: Random}})
	n := map[string]int{}
	const picks = 8000
	for i := 0; i < picks; i++ {
		n[sets["c"].pick(nil, 0).ID]++
	}
	if n["never"] != 0 {
		t.Errorf("weight 0 picked %d times", n["never"])
	}
	// Expect 2000 and 6000; the bounds are more than 8 standard deviations wide.
	if n["light"] < 1650 || n["light"] > 2350 || n["heavy"] < 5650 || n["heavy"] > 6350 {
		t.Errorf("weights 1:3 gave %v over %d picks", n, picks)
	}
}

func TestLeastLoadedAndPowerOfTwo(t *testing.T) {
	a, b := listen(t), listen(t)
	for _, p := range []Policy{{Algorithm: LeastLoaded}, {Algorithm: PowerOfTwo}} {
		r := NewRegistry(Options{})
		sets := r.Update([]Spec{
			{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 1},
			{ClusterID: "c", ID: "b", Addr: b.addr, Weight: 1},
		}, map[string]Policy{"c": p})
		busy := connect(t, sets["c"], false)
		for i := 0; i < 20; i++ {
			c := sets["c"].pick(nil, 0)
			if p.Algorithm == LeastLoaded && c == busy.Backend {
				t.Fatalf("least loaded picked the busy backend")
			}
		}
		// Power of two may pick the busy one only when both draws hit it.
		other := 0
		for i := 0; i < 200; i++ {
			if sets["c"].pick(nil, 0) != busy.Backend {
				other++
			}
		}
		if other < 100 {
			t.Errorf("policy %v picked the idle backend %d times of 200", p.Algorithm, other)
		}
		busy.Release(false)
	}
}

func TestPoolReuse(t *testing.T) {
	a := listen(t)
	r := NewRegistry(Options{MaxIdle: 1, IdleTimeout: time.Hour})
	set := r.Update([]Spec{{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 1}}, nil)["c"]
	c1 := connect(t, set, false)
	if c1.Reused {
		t.Fatal("first connection marked reused")
	}
	c2 := connect(t, set, false) // pool empty: second dial
	c1.Release(true)
	c2.Release(true) // MaxIdle 1: closed
	if n := c1.Backend.Idle(); n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}
	c3 := connect(t, set, false)
	if c3 != c1 || !c3.Reused {
		t.Fatalf("did not reuse the pooled connection")
	}
	if c3.Backend.Inflight() != 1 {
		t.Fatalf("inflight %d, want 1", c3.Backend.Inflight())
	}
	c4 := connect(t, set, true) // fresh bypasses the pool
	if c4.Reused {
		t.Fatal("fresh connection marked reused")
	}
	c3.Release(false)
	c4.Release(false)
	if c3.Backend.Idle() != 0 || c3.Backend.Inflight() != 0 {
		t.Fatalf("idle %d inflight %d after non-reusable releases", c3.Backend.Idle(), c3.Backend.Inflight())
	}
	// The backend's accept loop runs on its own: wait for it to count.
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		n := a.conns
		a.mu.Unlock()
		if n == 3 {
			break
		}
		if n > 3 || time.Now().After(deadline) {
			t.Fatalf("backend accepted %d connections, want 3", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPoolIdleTimeout(t *testing.T) {
	a := listen(t)
	r := NewRegistry(Options{IdleTimeout: time.Nanosecond})
	set := r.Update([]Spec{{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 1}}, nil)["c"]
	c1 := connect(t, set, false)
	c1.Release(true)
	c2 := connect(t, set, false)
	if c2 == c1 {
		t.Fatal("reused a connection older than the idle timeout")
	}
	c2.Release(false)
}

// TestPoolAgeFromCallersClock: ConnectAt and ReleaseAt judge the age of an
// idle connection with the caller's readings of the clock.
func TestPoolAgeFromCallersClock(t *testing.T) {
	a := listen(t)
	r := NewRegistry(Options{IdleTimeout: time.Minute})
	defer r.Close()
	set := r.Update([]Spec{{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 1}}, nil)["c"]
	t0 := time.Now()
	c1, err := set.ConnectAt(context.Background(), t0, time.Second, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	c1.ReleaseAt(true, t0)
	c2, err := set.ConnectAt(context.Background(), t0.Add(30*time.Second), time.Second, false, 0)
	if err != nil || c2 != c1 {
		t.Fatalf("idle 30 s of a minute: reused %v (%v)", c2 == c1, err)
	}
	c2.ReleaseAt(true, t0)
	c3, err := set.ConnectAt(context.Background(), t0.Add(2*time.Minute), time.Second, false, 0)
	if err != nil || c3 == c1 {
		t.Fatalf("idle 2 min of a minute: reused %v (%v)", c3 == c1, err)
	}
	// Released at a reading two minutes old: too old when taken at t0.
	c3.ReleaseAt(true, t0.Add(-2*time.Minute))
	c4, err := set.ConnectAt(context.Background(), t0, time.Second, false, 0)
	if err != nil || c4 == c3 {
		t.Fatalf("released 2 min before: reused %v (%v)", c4 == c3, err)
	}
	c4.Release(false)
}

func TestFailureCountingAndEvents(t *testing.T) {
	var ev events
	dead := deadAddr(t)
	r := NewRegistry(Options{OnEvent: ev.add, MaxFailures: 2, Attempts: 1})
	set := r.Update([]Spec{{ClusterID: "c", ID: "x", Addr: dead, Weight: 1}}, nil)["c"]
	for i := 0; i < 3; i++ {
		_, err := set.Connect(context.Background(), time.Second, false, 0)
		var ce *ConnectError
		if !errors.As(err, &ce) || ce.Attempts != 1 {
			t.Fatalf("attempt %d: %v, want a ConnectError after 1 attempt", i, err)
		}
	}
	b := set.Backends()[0]
	if !b.Down() {
		t.Fatal("backend not down after 3 failures (threshold 2)")
	}
	if got, want := sprint(ev.list()), "[BACKEND_DOWN c/x NO_AVAILABLE_BACKENDS c]"; got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	// The backend comes back on the same port: a down backend is still
	// tried when no other is up, and a success marks it up: the cluster
	// has recovered.
	ln, err := net.Listen("tcp", dead.String())
	if err != nil {
		t.Skipf("port %v taken meanwhile: %v", dead, err)
	}
	defer ln.Close()
	c := connect(t, set, false)
	c.Release(false)
	if b.Down() {
		t.Fatal("backend still down after a successful connect")
	}
	if got, want := sprint(ev.list()), "[BACKEND_DOWN c/x NO_AVAILABLE_BACKENDS c BACKEND_UP c/x CLUSTER_RECOVERED c]"; got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
}

func TestAttemptsAcrossBackends(t *testing.T) {
	alive := listen(t)
	r := NewRegistry(Options{})
	set := r.Update([]Spec{
		{ClusterID: "c", ID: "dead1", Addr: deadAddr(t), Weight: 1},
		{ClusterID: "c", ID: "dead2", Addr: deadAddr(t), Weight: 1},
		{ClusterID: "c", ID: "alive", Addr: alive.addr, Weight: 1},
	}, nil)["c"]
	for i := 0; i < 6; i++ {
		c := connect(t, set, false)
		if c.Backend.ID != "alive" {
			t.Fatalf("connected to %s", c.Backend.ID)
		}
		c.Release(false)
	}
	// Four dead backends, three attempts: the alive one may be out of reach.
	set = r.Update([]Spec{
		{ClusterID: "d", ID: "d1", Addr: deadAddr(t), Weight: 1},
		{ClusterID: "d", ID: "d2", Addr: deadAddr(t), Weight: 1},
		{ClusterID: "d", ID: "d3", Addr: deadAddr(t), Weight: 1},
		{ClusterID: "d", ID: "d4", Addr: deadAddr(t), Weight: 1},
	}, nil)["d"]
	_, err := set.Connect(context.Background(), time.Second, false, 0)
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Attempts != 3 || ce.ClusterID != "d" {
		t.Fatalf("got %v, want a ConnectError for cluster d after 3 attempts", err)
	}
}

func TestBackups(t *testing.T) {
	primary, backup := listen(t), listen(t)
	r := NewRegistry(Options{MaxFailures: 1})
	deadPrimary := deadAddr(t)
	set := r.Update([]Spec{
		{ClusterID: "c", ID: "p", Addr: primary.addr, Weight: 1},
		{ClusterID: "c", ID: "b", Addr: backup.addr, Weight: 1, Backup: true},
	}, nil)["c"]
	for i := 0; i < 4; i++ {
		c := connect(t, set, false)
		if c.Backend.ID != "p" {
			t.Fatalf("picked %s while the primary is up", c.Backend.ID)
		}
		c.Release(false)
	}
	set = r.Update([]Spec{
		{ClusterID: "c", ID: "p2", Addr: deadPrimary, Weight: 1},
		{ClusterID: "c", ID: "b", Addr: backup.addr, Weight: 1, Backup: true},
	}, nil)["c"]
	c := connect(t, set, false) // p2 fails (down at once), then the backup
	if c.Backend.ID != "b" {
		t.Fatalf("picked %s, want the backup", c.Backend.ID)
	}
	c.Release(false)
}

func TestUpdateKeepsAndRemoves(t *testing.T) {
	a, b := listen(t), listen(t)
	r := NewRegistry(Options{})
	specA := Spec{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 1}
	specB := Spec{ClusterID: "c", ID: "b", Addr: b.addr, Weight: 1}
	set := r.Update([]Spec{specA, specB}, nil)["c"]
	ca := connect(t, set, false)
	cb := connect(t, set, false)
	ca.Release(true)
	set2 := r.Update([]Spec{specA}, nil)["c"] // b removed, a kept
	if set2.Backends()[0] != ca.Backend {
		t.Fatal("kept backend was rebuilt")
	}
	if ca.Backend.Idle() != 1 {
		t.Fatal("kept backend lost its pool")
	}
	cb.Release(true) // removed: closed, not pooled
	if cb.Backend.Idle() != 0 {
		t.Fatal("removed backend pooled a connection")
	}
	if _, err := NewRegistry(Options{}).Update(nil, nil)["c"].Connect(context.Background(), time.Second, false, 0); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("empty set: %v, want ErrNoBackend", err)
	}
	r.Close()
	if ca.Backend.Idle() != 0 {
		t.Fatal("Close kept idle connections")
	}
}

// TestPoolDropsConnectionsClosedWhileIdle: an idle connection the backend
// closed (FIN), reset (RST) or wrote to unasked is never handed out; the
// next Connect dials a new one and counts the stale one.
// TestPoolKeepsConnectionWithExpiredDeadline: the read deadline of a pooled
// connection's last exchange may pass while it is idle; the liveness probe
// of its next use must not take that for a dead connection.
func TestPoolKeepsConnectionWithExpiredDeadline(t *testing.T) {
	s := listen(t)
	r := NewRegistry(Options{})
	defer r.Close()
	set := r.Update([]Spec{{ClusterID: "c", ID: "b", Addr: s.addr, Weight: 100}}, nil)["c"]
	first := connect(t, set, false)
	deadline.Read(first, &first.ReadDL, time.Now().Add(-time.Minute), time.Second) // expired 59 s ago
	first.Release(true)
	again := connect(t, set, false)
	defer again.Release(false)
	if !again.Reused || again != first {
		t.Fatalf("reused %v (same connection: %v): the pooled connection was dropped", again.Reused, again == first)
	}
	if n := set.Backends()[0].StaleClosed.Load(); n != 0 {
		t.Fatalf("StaleClosed = %d, want 0", n)
	}
	// Its next user arms a deadline of its own.
	if _, due := again.ReadDL.Due(time.Now(), time.Second); !due {
		t.Error("the cleared read deadline is still remembered as armed")
	}
}

func TestPoolDropsConnectionsClosedWhileIdle(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(c *net.TCPConn)
	}{
		{"closed", func(c *net.TCPConn) { c.Close() }},
		{"reset", func(c *net.TCPConn) { c.SetLinger(0); c.Close() }},
		{"unasked bytes", func(c *net.TCPConn) { c.Write([]byte("HTTP/1.1 408 Request Timeout\r\n\r\n")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan *net.TCPConn, 4)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c.(*net.TCPConn)
				}
			}()
			r := NewRegistry(Options{})
			defer r.Close()
			set := r.Update([]Spec{{ClusterID: "c", ID: "b", Addr: netip.MustParseAddrPort(ln.Addr().String()), Weight: 100}}, nil)["c"]
			first := connect(t, set, false)
			server := <-accepted
			defer server.Close()
			first.Release(true)
			tc.end(server)
			// Wait until the end is visible on the pooled socket.
			b := set.Backends()[0]
			deadline := time.Now().Add(5 * time.Second)
			for {
				c := connect(t, set, false)
				if !c.Reused {
					c.Release(false)
					break
				}
				c.Release(true) // not yet visible: put it back
				if time.Now().After(deadline) {
					t.Fatal("the pool kept handing out the connection the backend ended")
				}
				runtime.Gosched()
			}
			if b.StaleClosed.Load() != 1 {
				t.Fatalf("StaleClosed = %d, want 1", b.StaleClosed.Load())
			}
			if b.Idle() != 0 {
				t.Fatalf("%d idle connections left", b.Idle())
			}
		})
	}
}

// TestYoungConnectionsChecked: a connection reused right after its release
// is checked too: one the backend closed is never handed out.
func TestYoungConnectionsChecked(t *testing.T) {
	ln, accepted := listenAccepting(t)
	r := NewRegistry(Options{})
	defer r.Close()
	set := r.Update([]Spec{{ClusterID: "c", ID: "b", Addr: netip.MustParseAddrPort(ln.Addr().String()), Weight: 100}}, nil)["c"]
	first := connect(t, set, false)
	(<-accepted).Close()
	first.Release(true)
	b := set.Backends()[0]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := set.ConnectAt(context.Background(), time.Now(), time.Second, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Reused {
			c.Release(false)
			break
		}
		c.Release(true) // the close is not visible yet: put it back
		if time.Now().After(deadline) {
			t.Fatal("the pool kept handing out the connection the backend closed")
		}
		runtime.Gosched()
	}
	if b.StaleClosed.Load() != 1 {
		t.Fatalf("StaleClosed = %d, want 1", b.StaleClosed.Load())
	}
}
