package tcp

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
)

// exchange sends one byte on a new connection and returns the id byte the
// origin answers with.
func exchange(t *testing.T, addr string) string {
	t.Helper()
	c := dial(t, addr)
	io.WriteString(c, "?")
	c.CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// named answers with its name once per connection, then echoes.
func named(name string) func(net.Conn) {
	return func(c net.Conn) {
		io.ReadFull(c, make([]byte, 1))
		io.WriteString(c, name)
		echo(c)
	}
}

// TestBackendsChangeAtRuntime: a backend added is used by new connections;
// a backend removed gets no new connection, but the relays already
// established to it go on until they end (upstream marks it closing and
// lets its connections drain).
func TestBackendsChangeAtRuntime(t *testing.T) {
	oa := startOrigin(t, named("a"))
	ob := startOrigin(t, named("b"))
	reg := backends.NewRegistry(backends.Options{})
	t.Cleanup(reg.Close)
	cfg := func(specs ...backends.Spec) *Listener {
		return &Listener{Cluster: &Cluster{ID: "c", Backends: reg.Update(specs, nil)["c"]}}
	}
	a := backends.Spec{ClusterID: "c", ID: "a", Addr: oa.addr, Weight: 100}
	b := backends.Spec{ClusterID: "c", ID: "b", Addr: ob.addr, Weight: 100}
	srv, addr := start(t, cfg(a), false)

	if got := exchange(t, addr) + exchange(t, addr); got != "aa" {
		t.Fatalf("one backend: %q", got)
	}
	srv.Swap(cfg(a, b))
	seen := map[string]int{}
	for range 4 {
		seen[exchange(t, addr)]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("after adding b, round robin gave %v", seen)
	}

	// An established relay to a survives a's removal.
	long := dial(t, addr)
	io.WriteString(long, "?")
	who := make([]byte, 1)
	if _, err := io.ReadFull(long, who); err != nil {
		t.Fatal(err)
	}
	removed, kept := a, b
	if who[0] == 'b' {
		removed, kept = b, a
	}
	srv.Swap(cfg(kept))
	for range 3 {
		if got := exchange(t, addr); got != kept.ID {
			t.Fatalf("after removing %s, a new connection went to %q", removed.ID, got)
		}
	}
	io.WriteString(long, "still there")
	buf := make([]byte, len("still there"))
	if _, err := io.ReadFull(long, buf); err != nil || string(buf) != "still there" {
		t.Fatalf("the relay to the removed backend: %q, %v", buf, err)
	}
}

// TestDeadBackendSkipped: with one backend refusing connections among
// three, every client is served; once marked down the dead one is not
// tried any more.
func TestDeadBackendSkipped(t *testing.T) {
	var hits [2]atomic.Int64
	o1 := startOrigin(t, func(c net.Conn) { hits[0].Add(1); echo(c) })
	o2 := startOrigin(t, func(c net.Conn) { hits[1].Add(1); echo(c) })
	dead := deadAddr(t)
	var dials atomic.Int64
	reg := backends.NewRegistry(backends.Options{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		if addr == dead.String() {
			dials.Add(1)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}})
	t.Cleanup(reg.Close)
	var specs []backends.Spec
	for i, a := range []netip.AddrPort{o1.addr, dead, o2.addr} {
		specs = append(specs, backends.Spec{ClusterID: "c", ID: string(rune('a' + i)), Addr: a, Weight: 100})
	}
	_, addr := start(t, &Listener{Cluster: &Cluster{ID: "c", Backends: reg.Update(specs, nil)["c"]}}, false)
	for i := range 30 {
		c := dial(t, addr)
		io.WriteString(c, "x")
		c.CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "x" {
			t.Fatalf("connection %d: %q, %v", i, b, err)
		}
	}
	if a, b := hits[0].Load(), hits[1].Load(); a+b != 30 || a < 10 || b < 10 {
		t.Fatalf("live backends got %d and %d connections", a, b)
	}
	if n := dials.Load(); n != backends.DefaultMaxFailures {
		t.Fatalf("the dead backend was dialed %d times, want %d (then marked down)", n, backends.DefaultMaxFailures)
	}
}

// TestAllBackendsDeadClosesPromptly: refused everywhere, the client is
// closed after the retries, at once.
func TestAllBackendsDeadClosesPromptly(t *testing.T) {
	_, addr := start(t, &Listener{ConnectTimeout: 10 * time.Second}, false, deadAddr(t), deadAddr(t), deadAddr(t))
	for range 5 {
		c := dial(t, addr)
		if d := closedWithin(t, c, time.Now(), 8*time.Second); d > 3*time.Second {
			t.Fatalf("closed after %v", d)
		}
	}
}
