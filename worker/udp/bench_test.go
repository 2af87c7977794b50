package udp

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/metrics"
)

// BenchmarkRelay measures datagrams through a Server: one client keeps
// window datagrams in flight to an echo backend over one flow. It reports
// relayed datagrams per second (both directions counted once: a request
// and its reply are one round) and the CPU time of the whole process per
// round, which includes the test's client and echo backend (so it bounds
// the proxy's cost from above). Metrics are on, as in a worker; run with
// -benchmem, allocs/op is the allocations per datagram (0: the relay, the
// metrics and the echo backend allocate nothing per datagram). make bench
// runs it.
func BenchmarkRelay(b *testing.B) {
	reg := backends.NewRegistry(backends.Options{})
	e := startQuietEcho(b, "a")
	_, addr := startServer(b, &Listener{Cluster: cluster(b, reg, e)}, Options{Metrics: metrics.New()})
	c := dialClient(b, addr)
	const window = 32
	payload := make([]byte, 64)
	buf := make([]byte, 2048)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	sent, got, lost := 0, 0, 0
	for sent < min(window, b.N) {
		c.pc.Write(payload)
		sent++
	}
	for got+lost < b.N {
		c.pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.pc.Read(buf); err != nil {
			lost += sent - got - lost // the window is lost: send it again
			for i := 0; i < window && sent < b.N+lost; i++ {
				c.pc.Write(payload)
				sent++
			}
			continue
		}
		got++
		if sent < b.N {
			c.pc.Write(payload)
			sent++
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	b.ReportMetric(float64(got)/elapsed.Seconds(), "datagrams/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(got, 1)), "cpu-µs/datagram")
	b.ReportMetric(float64(lost), "lost")
}

// BenchmarkRelayFlood measures the listener under load: clients clients
// each send bursts of burst datagrams without waiting, then collect what
// comes back. It reports replies per second and the share lost (kernel
// queues overflowing), the numbers a batched receive would have to beat.
func BenchmarkRelayFlood(b *testing.B) {
	reg := backends.NewRegistry(backends.Options{})
	e := startEcho(b, "a")
	cl := cluster(b, reg, e)
	cl.BySourcePort = true
	_, addr := startServer(b, &Listener{Cluster: cl}, Options{})
	const clients, burst = 8, 16
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = dialClient(b, addr)
	}
	payload := make([]byte, 64)
	buf := make([]byte, 2048)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	sent, got := 0, 0
	for sent < b.N {
		for _, c := range cs {
			for range burst {
				c.pc.Write(payload)
				sent++
			}
		}
		for _, c := range cs {
			c.pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			for range burst {
				if _, err := c.pc.Read(buf); err != nil {
					break // the rest of this burst was lost
				}
				got++
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	b.ReportMetric(float64(got)/elapsed.Seconds(), "replies/s")
	b.ReportMetric(100*float64(sent-got)/float64(max(sent, 1)), "%lost")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(got, 1)), "cpu-µs/datagram")
}

// startQuietEcho is startEcho without allocations per datagram (its reply
// is built in one buffer), so that a benchmark's allocs/op are the
// proxy's.
func startQuietEcho(t testing.TB, name string) *echoBackend {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e := &echoBackend{name: name, pc: pc, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 70_000)
		k := copy(buf, name+"|")
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf[k:])
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:k+n], from)
		}
	}()
	return e
}
