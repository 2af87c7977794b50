package udp

import (
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
)

// sendFrom sends one datagram to srv from a fresh socket bound to ip,
// closed at once: the proxy keeps the flow, the test keeps no descriptor.
func sendFrom(t testing.TB, ip net.IP, srv *net.UDPAddr, msg string) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.WriteToUDP([]byte(msg), srv); err != nil {
		t.Fatal(err)
	}
}

// TestFlowsLeaveDescriptors: each flow holds a socket; a flood of new
// flows (many source addresses, a max_flows far above the open-file
// limit) stops at a share of that limit, counted as shed, and the process
// can still open descriptors: the flood never reaches EMFILE, which would
// starve every other listener of the worker.
func TestFlowsLeaveDescriptors(t *testing.T) {
	const limit = 256
	lowerFDLimit(t, limit)

	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	cl.BySourcePort = true
	srv, addr := startServer(t, &Listener{Cluster: cl, MaxFlows: 100_000}, Options{})
	to := net.UDPAddrFromAddrPort(addr)
	const sent = limit + 64
	for i := range sent {
		sendFrom(t, net.IPv4(127, 1, byte(i/200), byte(1+i%200)), to, "x")
		// One at a time: the listener's socket buffer must not drop any.
		waitFor(t, "the datagram to be handled", func() bool {
			return int64(srv.Sessions())+srv.Drops.TableFull.Load()+srv.Drops.DialFailed.Load() == int64(i+1)
		})
	}
	if n := srv.Sessions(); n > limit*fdSharePercent/100 {
		t.Errorf("%d live flows, over %d%% of the open-file limit %d", n, fdSharePercent, limit)
	}
	if d := srv.Drops.DialFailed.Load(); d > 0 {
		t.Errorf("%d flows failed to open their socket: the process ran out of descriptors", d)
	}
	if srv.Drops.TableFull.Load() == 0 {
		t.Error("no new flow counted as shed")
	}
	// The process still opens sockets (another listener would still accept).
	for range 16 {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatalf("opening a socket after the flood: %v", err)
		}
		defer pc.Close()
	}
}

// TestDescriptorShareEvictsIdle: when the flows hold their share of the
// open-file limit, a new flow takes the place of one silent for evictIdle,
// as in a full table: a flood that stopped does not lock new clients out
// for the idle timeout.
func TestDescriptorShareEvictsIdle(t *testing.T) {
	const limit = 256
	lowerFDLimit(t, limit)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }

	reg := backends.NewRegistry(backends.Options{})
	e := startEcho(t, "a")
	e.mute.Store(true)
	cl := cluster(t, reg, e)
	cl.BySourcePort = true
	srv, addr := startServer(t, &Listener{Cluster: cl, MaxFlows: 100_000}, Options{Now: now})
	to := net.UDPAddrFromAddrPort(addr)
	for i := 0; srv.Drops.TableFull.Load() == 0; i++ {
		sendFrom(t, net.IPv4(127, 4, byte(i/200), byte(1+i%200)), to, "x")
		waitFor(t, "the datagram to be handled", func() bool {
			return int64(srv.Sessions())+srv.Drops.TableFull.Load() == int64(i+1)
		})
	}
	full := srv.Sessions()
	clock.Add(int64(evictIdle))
	e.mute.Store(false)
	if r := dialClient(t, addr).ask("new", 2*time.Second); r != "a|new" {
		t.Fatalf("a new client after the flood went silent: reply %q (refused: %d)", r, srv.Drops.TableFull.Load())
	}
	if n := srv.Sessions(); n != full {
		t.Fatalf("%d flows, want %d (one evicted for the new one)", n, full)
	}
}

// lowerFDLimit sets the process's soft open-file limit to limit for the
// test, and fdLimit as a process started with it reads it; both are
// restored after.
func lowerFDLimit(t *testing.T, limit uint64) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	low := orig
	low.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	fdLimit.Store(readFDLimit())
	t.Cleanup(func() {
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig)
		fdLimit.Store(readFDLimit())
	})
}
